"""The models the lessons need but do not teach how to train, trained once and cached.

Lesson 04's style adapters, and lesson 05's fine-tuned models when lessons 02-03 have not run,
come from a `Recipe`: the recipe lessons 02 and 03 show cell by cell (`SFTTrainer` on conversations
with assistant-only loss, full fine-tuning or a LoRA adapter on every linear layer, the output layer
run on the trained tokens only). It leaves activation checkpointing off (lesson 03 turns it on to
show what LoRA saves in memory): here speed matters more than memory. Training takes a minute or
two on a 2-core CPU, the first time only.
"""
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .profiles import PROFILES, settings

CPU = PROFILES["cpu"]  # the lessons' own steps and batch size, so a cached model is the lesson's model
MARKERS = ("model.safetensors", "adapter_model.safetensors")
VERSION = "v2"  # bump when the training below changes (v2: no lora_dropout), so no older cached model is taken


@dataclass(frozen=True)
class Recipe:
    """One cached training run: what it trains on, how, and the folder it is kept in."""
    data: str                                # "chat" (the course's conversations) or "style-<name>" (lesson 04)
    learning_rate: float
    steps: int = CPU["max_steps"]
    batch_size: int = CPU["batch_size"]
    lora_r: int | None = None                # None: full fine-tuning; a rank: a LoRA adapter
    model_source: str = "offline"
    dataset_source: str = "offline"          # for data "chat": the profile's conversations
    dataset_config: str | None = None

    @classmethod
    def for_lesson(cls, cfg, lora: bool) -> "Recipe":
        """Lesson 02's full fine-tune (lora=False) or lesson 03's adapter, as the profile `cfg` trains them."""
        return cls("chat", cfg.lora_learning_rate if lora else cfg.learning_rate, cfg.max_steps, cfg.batch_size,
                   lora_r=cfg.lora_r if lora else None, model_source=cfg.model_source,
                   dataset_source=cfg.dataset_source, dataset_config=cfg.dataset_config)

    @property
    def label(self) -> str:
        """The cache folder's name: every setting that changes the weights, the hardware's precision too."""
        from .hardware import detect_hardware
        from .models import model_path

        method = f"lora-r{self.lora_r}" if self.lora_r else "full"
        hardware = detect_hardware()
        precision = next((k for k in ("bf16", "fp16") if hardware.trainer_precision()[k]), "fp32")
        data = self.data if self.dataset_source == "offline" else \
            f"{self.data}[{Path(self.dataset_source).name}-{self.dataset_config or 'default'}]"
        return (f"{Path(model_path(self.model_source)).name}-{data}-{method}-steps{self.steps}"
                f"-lr{self.learning_rate:g}-b{self.batch_size}-{precision}-{VERSION}")

    @property
    def folder(self) -> Path:
        from .assets import cache_dir

        return cache_dir() / "trained" / self.label

    def dataset(self):
        from .data import load_chat_dataset
        from .styles import styled_dataset

        if self.data == "chat":
            return load_chat_dataset(self.dataset_source, self.dataset_config)["train"]
        if self.data.startswith("style-"):
            return styled_dataset(self.data.removeprefix("style-"))
        raise ValueError(f"Unknown recipe data {self.data!r}: use 'chat' or 'style-<style>'")

    def trained(self) -> str:
        """The folder of the trained model or adapter, training it on first use."""
        folder = self.folder
        if _cached(folder):
            return str(folder)
        dataset = self.dataset()  # a bad `data` fails here, before anything is written
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _one_trainer_at_a_time(folder.parent / f".{self.label}.lock"):
            if _cached(folder):  # another process trained it while this one waited
                return str(folder)
            print(f"training {self.data!r} once ({self.steps} steps, {'LoRA' if self.lora_r else 'full'}; "
                  f"a minute or two on a 2-core CPU), cached in {folder}")
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{self.label}-"))
            _train(self, dataset, staging)
            try:
                staging.rename(folder)  # atomic: an interrupted run never leaves a half-written model behind
            except OSError:  # another run cached the same model meanwhile: keep that one
                shutil.rmtree(staging, ignore_errors=True)
        return str(folder)


def _cached(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in MARKERS)


@contextmanager
def _one_trainer_at_a_time(lock: Path):
    """Held while a recipe trains: a second process that needs the same model (two notebooks at once,
    `make test`'s parallel workers) waits for it instead of training it again."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic rename still keeps the cache whole
        yield
        return
    with open(lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another process is training this model; waiting for it ({lock.name})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _train(recipe: Recipe, dataset, destination: Path) -> None:
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from . import templates
    from .hardware import detect_hardware
    from .models import load_model
    from .training import use_trained_token_loss_on_cpu

    model, tokenizer = load_model(recipe.model_source)
    tokenizer.chat_template = templates.training_template()
    scratch = tempfile.mkdtemp()
    args = SFTConfig(output_dir=scratch, max_steps=recipe.steps, per_device_train_batch_size=recipe.batch_size,
                     learning_rate=recipe.learning_rate, lr_scheduler_type="cosine", warmup_steps=0.1,
                     max_length=256, assistant_only_loss=True, activation_checkpointing=False,
                     save_strategy="no", report_to="none", seed=0, **detect_hardware().trainer_precision())
    lora = LoraConfig(r=recipe.lora_r, lora_alpha=2 * recipe.lora_r, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM") if recipe.lora_r else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    use_trained_token_loss_on_cpu(trainer)
    with torch.enable_grad():  # in case something (LightEval, an inference cell) turned autograd off
        trainer.train()
    trainer.save_model(str(destination))
    tokenizer.save_pretrained(str(destination))
    shutil.rmtree(scratch, ignore_errors=True)


def newest_output(run: str, marker: str, inside: str = "", roots=None, base_model: str | None = None):
    """The newest run folder of a lesson (`02_sft`, `02_sft-2`, ... as `fresh_output_dir` names them)
    holding `inside/marker`, or None. Side folders such as `02_sft-cli` or `02_sft-packing` hold
    other, shorter trainings and are never taken; with `base_model`, neither is a run of another
    profile's model (a 135M adapter must not land on a 1.7B base)."""
    roots = roots or [Path.cwd() / "outputs"]
    runs = [p for root in roots for p in Path(root).glob(f"{run}*") if re.fullmatch(rf"{re.escape(run)}(-\d+)?", p.name)]
    found = [p / inside for p in runs if (p / inside / marker).exists()
             and (base_model is None or same_base(p / inside, base_model))]
    return max(found, key=lambda p: (p / marker).stat().st_mtime) if found else None


ARCHITECTURE = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")


def same_base(folder: Path, base_model: str) -> bool:
    """Whether a lesson's output (a model, or an adapter naming its base) was trained from `base_model`."""
    import json
    adapter = Path(folder) / "adapter_config.json"
    if adapter.exists():
        named = json.loads(adapter.read_text()).get("base_model_name_or_path")
        if named == base_model:
            return True
        folder = named  # the same model under another path (another cache folder): compare its shape
    shape = architecture(folder)
    return shape is not None and shape == architecture(base_model)


def architecture(model) -> tuple | None:
    """A model's shape from its config (a folder or a Hub name), or None where it cannot be read."""
    import json
    config = Path(str(model)) / "config.json"
    if config.exists():
        values = json.loads(config.read_text())
    else:
        try:
            from transformers import AutoConfig
            values = AutoConfig.from_pretrained(str(model)).to_dict()
        except (OSError, ValueError):
            return None
    return tuple(values.get(key) for key in ARCHITECTURE)


def sft_model(cfg=None) -> str:
    """Lesson 02's fully fine-tuned model (a folder) for the profile `cfg` (default: cpu): the lesson's
    own output if it ran on the same base model, else the recipe's."""
    from .models import model_path
    cfg = cfg or settings("cpu")
    found = newest_output("02_sft", "model.safetensors", base_model=model_path(cfg.model_source))
    return str(found) if found else Recipe.for_lesson(cfg, lora=False).trained()


def lora_adapter(cfg=None) -> str:
    """Lesson 03's LoRA adapter (a folder with adapter_config.json) for the profile `cfg`: the lesson's
    own if it ran on the same base model, else the recipe's."""
    from .models import model_path
    cfg = cfg or settings("cpu")
    found = newest_output("03_lora", "adapter_model.safetensors", inside="LoRA", base_model=model_path(cfg.model_source))
    return str(found) if found else Recipe.for_lesson(cfg, lora=True).trained()
