"""Peak memory of full fine-tuning vs LoRA with and without lora_dropout, on the offline model.

    .venv/bin/python benchmarks/lora_memory.py [--steps 8]

Each run trains SmolLM2-135M-Instruct on the course's chat set (batch 8, max_length 256,
assistant-only loss) and reports the process's peak resident memory, measured from a clean start.
About 5 minutes on a 2-core CPU.
"""
import argparse

import torch
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

import helpers
from helpers import templates, training
from helpers.measure import PeakMemory, release_memory

RUNS = {"full fine-tune": None, "LoRA r=8, lora_dropout=0.05": 0.05, "LoRA r=8, lora_dropout=0.0": 0.0}


def peak_memory(dropout, steps: int) -> PeakMemory:
    torch.manual_seed(0)
    model, tokenizer = helpers.load_model("offline")
    tokenizer.chat_template = templates.training_template()
    args = SFTConfig(output_dir="/tmp/lora-memory", max_steps=steps, per_device_train_batch_size=8, max_length=256,
                     assistant_only_loss=True, activation_checkpointing=False, save_strategy="no", report_to="none",
                     disable_tqdm=True, seed=0, **helpers.detect_hardware().trainer_precision())
    lora = None if dropout is None else LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout,
                                                   target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=helpers.load_chat_dataset()["train"],
                         processing_class=tokenizer, peft_config=lora)
    training.use_trained_token_loss_on_cpu(trainer)  # the lessons' path
    with PeakMemory() as memory:
        trainer.train()
    del trainer, model
    release_memory()
    return memory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    steps = parser.parse_args().steps
    print(f"| run ({steps} steps) | memory before (GB) | peak (GB) |\n|---|---|---|")
    for name, dropout in RUNS.items():
        memory = peak_memory(dropout, steps)
        print(f"| {name} | {memory.start_gb:.2f} | {memory.peak_gb:.2f} |", flush=True)
