"""The lessons' training recipe, run once and cached, for notebooks that need a trained model but
do not teach training (lesson 04's style adapters, lesson 05's fine-tuned models when run alone).

It is the recipe lessons 02 and 03 show cell by cell: `SFTTrainer` on conversations with
assistant-only loss, full fine-tuning or a LoRA adapter on every linear layer, the output layer run
on the trained tokens only. It leaves activation checkpointing off (lesson 03 turns it on to show
what LoRA saves in memory): here speed matters more than memory.
"""
import shutil
import tempfile
from pathlib import Path

from .profiles import PROFILES

CPU = PROFILES["cpu"]  # the lessons' own steps and batch size, so a cached model is the lesson's model
MARKERS = ("model.safetensors", "adapter_model.safetensors")
RECIPE = "v2"  # bump when the recipe below changes (v2: no lora_dropout), so no older cached model is taken for it


def train_cached(name: str, dataset, learning_rate: float, steps: int = CPU["max_steps"],
                 batch_size: int = CPU["batch_size"], lora_r: int | None = None, model_source: str = "offline") -> str:
    """The folder of a model (lora_r None) or LoRA adapter trained on `dataset`, trained on first use."""
    from .hardware import detect_hardware
    from .models import model_path
    from .offline import cache_dir

    method = f"lora-r{lora_r}" if lora_r else "full"
    precision = "bf16" if detect_hardware().trainer_precision()["bf16"] else "fp32"  # a new recipe, a new folder
    label = (f"{Path(model_path(model_source)).name}-{name}-{method}-steps{steps}-lr{learning_rate:g}-b{batch_size}"
             f"-{precision}-{RECIPE}")
    folder = cache_dir() / "trained" / label
    if any((folder / marker).exists() for marker in MARKERS):
        return str(folder)
    print(f"training {name!r} once ({steps} steps, {method}; about a minute on a 2-core CPU), cached in {folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{label}-"))
    _train(dataset, learning_rate, steps, batch_size, lora_r, model_source, staging)
    try:
        staging.rename(folder)  # atomic: an interrupted run never leaves a half-written model behind
    except OSError:  # another run cached the same model meanwhile: keep that one
        shutil.rmtree(staging, ignore_errors=True)
    return str(folder)


def _train(dataset, learning_rate, steps, batch_size, lora_r, model_source, destination: Path) -> None:
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from . import templates
    from .hardware import detect_hardware
    from .models import load_model
    from .training import use_trained_token_loss_on_cpu

    model, tokenizer = load_model(model_source)
    tokenizer.chat_template = templates.training_template()
    scratch = tempfile.mkdtemp()
    args = SFTConfig(output_dir=scratch, max_steps=steps, per_device_train_batch_size=batch_size,
                     learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=0.1, max_length=256,
                     assistant_only_loss=True, activation_checkpointing=False, save_strategy="no",
                     report_to="none", seed=0, **detect_hardware().trainer_precision())
    lora = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM") if lora_r else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    use_trained_token_loss_on_cpu(trainer)
    with torch.enable_grad():  # in case something (LightEval, an inference cell) turned autograd off
        trainer.train()
    trainer.save_model(str(destination))
    tokenizer.save_pretrained(str(destination))
    shutil.rmtree(scratch, ignore_errors=True)
