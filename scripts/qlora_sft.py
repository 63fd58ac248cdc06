"""The chapter's quick-reference workflow as one script: load the model in 4 bits, describe a LoRA
adapter, configure SFT, train with `SFTTrainer(peft_config=...)`, save the adapter.

    python scripts/qlora_sft.py                                      # one process: a GPU, else the CPU
    accelerate launch --multi_gpu --num_processes 2 scripts/qlora_sft.py   # data parallel (DDP), 2 GPUs
    accelerate launch --config_file scripts/fsdp_qlora.yaml scripts/qlora_sft.py   # sharded (FSDP), larger models

It runs unchanged on one process or several: `accelerate launch` starts one copy per GPU (or per CPU
process, over the gloo backend), each trains on its own share of every batch, and the gradients are
averaged before each step, so every copy holds the same adapter. `tests/test_qlora_script.py`
launches it as two CPU processes and checks that. Options are the fields of `Config` below
(`--max_steps 8`, `--model offline`, `--dataset HuggingFaceTB/smoltalk --dataset_config everyday-conversations`).
On a machine without 4-bit support (Apple silicon, ARM) pass `--load_in_4bit false`: plain LoRA.
A model too large for one GPU needs sharding, not copies: with `scripts/fsdp_qlora.yaml` each GPU holds
a shard of every weight (FSDP). For that the script stores the 4-bit weights in a float dtype FSDP can
shard (`bnb_4bit_quant_storage`), loads without a `device_map` (FSDP places the shards), and gathers
the full adapter before saving. Data parallelism has been run here on two CPU processes; FSDP needs GPUs
(accelerate refuses it on a CPU) and none was lent, so that path is checked, not run.
"""
import hashlib
from dataclasses import dataclass

import torch
from accelerate import PartialState
from accelerate.utils import DistributedType
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, HfArgumentParser
from trl import SFTConfig, SFTTrainer

import helpers


@dataclass
class Config:
    model: str = "offline"            # a Hub id, a local folder, or "offline" (the course's SmolLM2-135M-Instruct)
    dataset: str = "offline"          # a Hub dataset with a `messages` column, or "offline" (the course's chats)
    dataset_config: str | None = None  # e.g. "everyday-conversations" for smoltalk
    output_dir: str = "outputs/qlora-sft"
    load_in_4bit: bool = True         # QLoRA: the frozen weights in 4-bit NF4; false: plain LoRA
    lora_r: int = 16                  # the chapter's quick reference: r=16, alpha=32
    lora_alpha: int = 32
    learning_rate: float = 2e-4       # LoRA wants ~10x full fine-tuning's rate (lesson 03)
    max_steps: int = 60               # a few minutes on a GPU; lower it on a CPU
    per_device_batch_size: int = 4    # per process: the global batch is this x processes x accumulation
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    seed: int = 0


def load_quantized(cfg: Config, state: PartialState):
    hardware = helpers.detect_hardware()
    sharded = state.distributed_type == DistributedType.FSDP
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=hardware.dtype,
                                      # FSDP shards float tensors only: the packed 4-bit values stored as floats
                                      bnb_4bit_quant_storage=hardware.dtype if sharded else torch.uint8,
                                      ) if cfg.load_in_4bit else None
    # data parallel: each process holds a whole copy on its own device (not device_map="auto", which would
    # spread one copy over every GPU); FSDP: no device_map, it places each process's shard itself
    device = state.process_index if hardware.device == "cuda" else hardware.device
    path = helpers.model_path(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=hardware.dtype, quantization_config=quantization,
                                                 device_map=None if sharded else {"": device}, use_safetensors=True)
    return model, AutoTokenizer.from_pretrained(path)


def adapter_fingerprint(model) -> str:
    """A hash of every trained weight: equal on two processes only if they hold the same adapter."""
    digest = hashlib.sha256()
    for name, param in sorted((n, p) for n, p in model.named_parameters() if p.requires_grad):
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def main(cfg: Config) -> None:
    state = PartialState()  # the process's rank and the number of processes `accelerate launch` started
    model, tokenizer = load_quantized(cfg, state)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.05, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    args = SFTConfig(output_dir=cfg.output_dir, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
                     per_device_train_batch_size=cfg.per_device_batch_size,
                     gradient_accumulation_steps=cfg.gradient_accumulation_steps, max_length=cfg.max_length,
                     lr_scheduler_type="cosine", warmup_steps=0.1, logging_steps=max(1, cfg.max_steps // 10),
                     save_strategy="no", report_to="none", seed=cfg.seed,
                     **helpers.detect_hardware().trainer_precision())
    data = helpers.load_chat_dataset(cfg.dataset, cfg.dataset_config)["train"]
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    result = trainer.train()
    if trainer.is_fsdp_enabled:  # each process holds a shard: gather the whole adapter to save it as one file
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(cfg.output_dir)  # the adapter only (a few MB), written by the main process
    first_batch = next(iter(trainer.get_train_dataloader()))["input_ids"]  # this process's share of the first step
    print(f"process {state.process_index} of {state.num_processes}: final train loss {result.training_loss:.4f}, "
          f"first batch {hashlib.sha256(first_batch.cpu().numpy().tobytes()).hexdigest()[:8]}, "
          f"adapter {adapter_fingerprint(trainer.model)}", flush=True)


if __name__ == "__main__":
    (config,) = HfArgumentParser(Config).parse_args_into_dataclasses()
    torch.manual_seed(config.seed)
    main(config)
