"""Peak memory of full fine-tuning vs LoRA, with and without activation checkpointing and lora_dropout.

    .venv/bin/python benchmarks/lora_memory.py [--steps 4]

Each run trains SmolLM2-135M-Instruct on the course's chat set (the cpu profile's batch, max_length 256,
assistant-only loss, the output layer on trained tokens only, as the lessons do) in a fresh
process, and reports that process's peak resident memory and seconds per step. About 3 minutes on
a 2-core CPU with --steps 4.
"""
import argparse
import time

from helpers.measure import in_fresh_process

RUNS = {  # name: (lora_dropout or None for full fine-tuning, activation checkpointing)
    "full fine-tune": (None, False),
    "full fine-tune + checkpointing (lesson 03)": (None, True),
    "LoRA r=8": (0.0, False),
    "LoRA r=8 + checkpointing (lesson 03)": (0.0, True),
    "LoRA r=8, lora_dropout=0.05": (0.05, False),
    "LoRA r=8, lora_dropout=0.05 + checkpointing": (0.05, True),
}


def measure(dropout, checkpointing: bool, steps: int) -> tuple:
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    import helpers
    from helpers import templates, training
    from helpers.measure import PeakMemory

    torch.manual_seed(0)
    model, tokenizer = helpers.load_model("offline")
    tokenizer.chat_template = templates.training_template()
    batch = helpers.profiles.PROFILES["cpu"]["batch_size"]  # what the lessons train with
    args = SFTConfig(output_dir="/tmp/lora-memory", max_steps=steps, per_device_train_batch_size=batch, max_length=256,
                     assistant_only_loss=True, activation_checkpointing=checkpointing, save_strategy="no",
                     report_to="none", disable_tqdm=True, seed=0, **helpers.detect_hardware().trainer_precision())
    lora = None if dropout is None else LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout,
                                                   target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=helpers.load_chat_dataset()["train"],
                         processing_class=tokenizer, peft_config=lora)
    training.use_trained_token_loss_on_cpu(trainer)
    with PeakMemory() as memory:
        start = time.perf_counter()
        trainer.train()
    return memory.start_gb, memory.peak_gb, (time.perf_counter() - start) / steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    steps = parser.parse_args().steps
    print(f"| run ({steps} steps) | memory before (GB) | peak (GB) | x full fine-tune | s/step |\n|---|---|---|---|---|")
    full = None
    for name, (dropout, checkpointing) in RUNS.items():
        before, peak, seconds = in_fresh_process(measure, dropout, checkpointing, steps)
        full = full or peak
        print(f"| {name} | {before:.2f} | {peak:.2f} | {peak / full:.2f} | {seconds:.1f} |", flush=True)
