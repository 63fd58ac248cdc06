"""Training and evaluation speed of the offline model on this machine, against plain TRL, in one run.

    .venv/bin/python benchmarks/training_speed.py [--steps 5] [--only "LoRA|packed"] [--no-eval] [--out benchmarks/results]

Prints a Markdown table and writes it, with the raw numbers as JSON, under --out (one file per
kind of machine, `results/training-speed-cpu-avx2.md` and so on, so the kinds can be compared). About 6
minutes on a 2-core CPU with bf16 units.

What is measured, each training path in a fresh process (so no path inherits another's heap), on
the same conversations (the course's paths 4 a step, as the cpu profile trains; plain TRL its default 8):
- the machine's matmul throughput (FLOP/s) in fp32 and bf16: the ceiling for MFU;
- training: tokens/s (real tokens, padding excluded) and peak memory, after one warm-up step,
  for plain TRL (the chapter's settings: no packing, default collator, default dtype, TRL's loss)
  and the course's default (bf16 autocast where the CPU has bf16 units, the output layer run only
  on trained tokens and the pad positions skipped: `training.use_trained_token_loss_on_cpu`), each of its choices undone one at a
  time, LoRA and QLoRA, and what gradient checkpointing and a smaller batch do to
  their memory;
- MFU: model FLOPs / time / measured matmul FLOP/s, with model FLOPs = 6 x parameters x tokens
  for full fine-tuning and 4 x parameters x tokens for LoRA (no weight gradients for the frozen
  base; the adapters' own FLOPs are under 2% and left out). The course's path skips most of the
  output layer's work, so 6 x parameters overstates what it computes; the second MFU column counts
  the body only (parameters less the 49,152 x 576 output layer), which every path computes in full;
- evaluation: questions/s for log-likelihood scoring and for generation, batch 1 vs the course's.
"""
import argparse
import json
import platform
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import torch

import helpers
from helpers import cpu_4bit, templates, training
from helpers.measure import PeakMemory, in_fresh_process, release_memory
from helpers.profiles import PROFILES


def matmul_flops(dtype, size: int = 2048, seconds: float = 3.0) -> float:
    """Sustained FLOP/s of square matmuls, the best the hardware does on this kind of work."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)  # warm-up: thread pool, kernels
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        runs += 1
    return 2 * size**3 * runs / (time.perf_counter() - start)


@dataclass(frozen=True)
class TrainingPath:
    """One way of training the offline model; the defaults are plain TRL with the chapter's settings."""
    course: bool = False             # the course's data settings: assistant-only loss, max_length 256
    bf16: bool = False               # bf16 autocast
    loss: str | None = None          # None: TRL's loss; "trained tokens" or "model": training.use_trained_token_loss_on_cpu
    lora: bool = False               # a LoRA adapter, r=8, on every linear layer
    qlora: bool = False              # ... on the 4-bit (NF4) base model
    bnb_cpu_kernel: bool = False     # QLoRA with bitsandbytes' own CPU de-quantization (a scalar loop without AVX-512)
    bf16_adapter: bool = False       # QLoRA with the adapter in bf16 as TRL casts it (emulated without bf16 units)
    packing: bool = False
    padding_free: bool = False
    pad_positions: bool = False      # the course's loss computing a padded batch's pad positions (training.padding_dropped off)
    checkpointing: bool = False      # activation (gradient) checkpointing
    batch: int | None = None         # None: the cpu profile's for the course's paths, TRL's default 8 otherwise
    extra: dict = field(default_factory=dict)  # any other SFTConfig argument

    @property
    def batch_size(self) -> int:
        return self.batch or (PROFILES["cpu"]["batch_size"] if self.course else 8)


def train_speed(path: TrainingPath, steps: int) -> dict:
    """Tokens/s over steps 2..n (the first step pays for start-up), and peak memory, of one path."""
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    dataset = helpers.load_chat_dataset()["train"]
    compute = torch.bfloat16 if BF16 else torch.float32  # as the lessons: bf16 is emulated, and very slow, without bf16 units
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=compute) if path.qlora else None
    if path.qlora and not path.bnb_cpu_kernel:
        cpu_4bit.use_vectorized_dequantize()  # as lesson 03: only on an x86 CPU without AVX-512
    model, tokenizer = helpers.load_model("offline", **({"quantization_config": quantization} if quantization else {}))
    tokenizer.chat_template = templates.training_template()
    weights_mb = model.get_memory_footprint() / 2**20  # resident weights after loading (4-bit for QLoRA)
    course = {"assistant_only_loss": True} if path.course else {}
    args = SFTConfig(output_dir="/tmp/training-speed", max_steps=steps, per_device_train_batch_size=path.batch_size,
                     max_length=256 if path.course else 1024, packing=path.packing, padding_free=path.padding_free,
                     bf16=path.bf16, use_cpu=True, activation_checkpointing=path.checkpointing, save_strategy="no",
                     report_to="none", logging_steps=1, disable_tqdm=True, seed=0, **course, **path.extra)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM") if path.lora else None
    clock = training.step_clock()  # the first step pays for start-up: timed from its end
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora,
                         callbacks=[clock])
    if path.qlora and not path.bf16_adapter:
        training.adapter_in_training_precision(trainer)  # as lesson 03: TRL's bf16 adapter is emulated without bf16 units
    if path.loss:
        training.use_trained_token_loss_on_cpu(trainer, trained_positions_only=path.loss == "trained tokens",
                                               drop_padding=not path.pad_positions)
    with PeakMemory() as memory:
        trainer.train()
    tokens = [float(e["num_tokens"]) for e in trainer.state.log_history if "num_tokens" in e]
    parameters = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    head = model.get_output_embeddings().weight.numel()
    seconds = clock.ends[-1] - clock.ends[0]
    return {"tokens_per_second": (tokens[-1] - tokens[0]) / seconds, "seconds_per_step": clock.seconds_per_step(),
            "peak_memory_gb": memory.peak_gb, "memory_before_gb": memory.start_gb, "parameters": parameters,
            "head_parameters": head, "weights_mb": weights_mb}


BF16 = helpers.detect_hardware().trainer_precision()["bf16"]  # autocast only where the CPU has bf16 units
PRECISION = "bf16 autocast" if BF16 else "fp32"
COURSE = TrainingPath(course=True, bf16=BF16, loss="trained tokens")  # what the lessons run on this CPU
LORA = replace(COURSE, lora=True)
QLORA = replace(LORA, qlora=True)
PATHS = {  # the first is the baseline every ratio is taken against
    "plain TRL (chapter defaults: fp32, padded, TRL's loss)": TrainingPath(),
    f"course default (padding dropped, {PRECISION}, loss on trained tokens)": COURSE,
    "course, but pad positions computed": replace(COURSE, pad_positions=True),
    "course, but the model's loss on every position": replace(COURSE, loss="model"),
    "course, but TRL's fused loss": replace(COURSE, loss=None),
    "course, but fp32" if BF16 else "course, but bf16 autocast (emulated: no bf16 units)": replace(COURSE, bf16=not BF16),
    "course, but packed": replace(COURSE, packing=True),
    "course, but unfused AdamW": replace(COURSE, extra={"optim": "adamw_torch"}),  # fused is the default now
    "course + gradient checkpointing": replace(COURSE, checkpointing=True),
    "LoRA r=8 (course default, as the cached recipes train)": LORA,
    "LoRA r=8 + gradient checkpointing (lesson 03)": replace(LORA, checkpointing=True),
    "QLoRA r=8 (course default)": QLORA,
    "QLoRA r=8, bitsandbytes' own CPU de-quantization": replace(QLORA, bnb_cpu_kernel=True),
    "QLoRA r=8, adapter in bf16 as TRL casts it": replace(QLORA, bf16_adapter=True),
    "QLoRA r=8 + gradient checkpointing (lesson 03)": replace(QLORA, checkpointing=True),
    "QLoRA r=8, batch 8": replace(QLORA, batch=8),
}


def letter_scores(model, tokenizer, prompts: list, batch_size: int) -> list:
    """Log-likelihood of " A".." D" after each MMLU prompt, as LightEval's letter task scores it.

    One forward pass per batch of prompts: the four letters are single tokens, so the last
    position's logits score all four at once (LightEval runs one sequence per choice instead).
    """
    letters = [tokenizer.encode(f" {c}", add_special_tokens=False)[-1] for c in "ABCD"]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    scores = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            inputs = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True)
            logits = model(**inputs).logits[:, -1, :].log_softmax(-1)
            scores += logits[:, letters].tolist()
    tokenizer.padding_side = side
    return scores


def eval_speed(questions: int = 16) -> list:
    """Questions/s for log-likelihood (MMLU letters) and generation (held-out replies), batch 1 vs the course's."""
    from helpers.evaluation import evalsets, lighteval_tasks
    from helpers import evaluation

    model, tokenizer = helpers.load_model("offline")
    model.eval()
    mmlu = evalsets.load_mmlu("anatomy").select(range(questions))
    prompts = [lighteval_tasks.mmlu_prompt(row).query for row in mmlu]
    held_out = [evaluation.prompt_of(r["messages"]) for r in helpers.load_chat_dataset()["test"]][:questions]
    rows = []
    for kind, batch, run in (
        ("log-likelihood (MMLU letters)", 1, lambda: letter_scores(model, tokenizer, prompts, 1)),
        ("log-likelihood (MMLU letters)", 16, lambda: letter_scores(model, tokenizer, prompts, 16)),
        ("generation (held-out, 16 new tokens)", 1,
         lambda: evaluation.generate_replies(model, tokenizer, held_out, max_new_tokens=16, batch_size=1)),
        ("generation (held-out, 16 new tokens)", 16,
         lambda: evaluation.generate_replies(model, tokenizer, held_out, max_new_tokens=16, batch_size=16)),
    ):
        start = time.perf_counter()
        run()
        rows.append({"kind": kind, "batch": batch, "questions_per_second": questions / (time.perf_counter() - start)})
        print(f"{kind}, batch {batch}: {rows[-1]['questions_per_second']:.2f} questions/s", flush=True)
    del model
    release_memory()
    return rows


def training_rows(steps: int, only: str, ceiling: dict) -> list:
    """Each training path (those whose name contains `only`, and the baseline) in a fresh process."""
    rows = []
    for name, path in ((n, p) for n, p in PATHS.items()
                       if any(part in n for part in only.split("|")) or n.startswith("plain TRL")):
        result = in_fresh_process(train_speed, path, steps)
        per_parameter = 4 if path.lora else 6
        dtype = "bf16" if path.bf16 else "fp32"
        rate = result["tokens_per_second"] / ceiling[dtype]
        result.update(name=name, ceiling=dtype, mfu=per_parameter * result["parameters"] * rate,
                      mfu_body=per_parameter * (result["parameters"] - result["head_parameters"]) * rate)
        rows.append(result)
        print(f"{name}: {result['tokens_per_second']:.0f} tokens/s, MFU {result['mfu']:.1%}", flush=True)
    return rows


def markdown_tables(rows: list, evals: list) -> str:
    baseline, course = rows[0], next((r for r in rows if r["name"].startswith("course default")), rows[0])
    lines = ["| path | tokens/s | x plain TRL | s/step | MFU, 6N (vs measured matmul) | MFU, body only | "
             "peak memory (GB) | x course full | memory before (GB) | weights (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['tokens_per_second']:.0f} | {r['tokens_per_second'] / baseline['tokens_per_second']:.2f} | "
              f"{r['seconds_per_step']:.2f} | {r['mfu']:.1%} of {r['ceiling']} | {r['mfu_body']:.1%} | "
              f"{r['peak_memory_gb']:.2f} | {r['peak_memory_gb'] / course['peak_memory_gb']:.2f} | "
              f"{r['memory_before_gb']:.2f} | {r['weights_mb']:.0f} |" for r in rows]
    lines += ["", "| evaluation | batch | questions/s | x batch 1 |", "|---|---|---|---|"] if evals else []
    for row in evals:
        single = next(r for r in evals if r["kind"] == row["kind"] and r["batch"] == 1)["questions_per_second"]
        lines.append(f"| {row['kind']} | {row['batch']} | {row['questions_per_second']:.2f} | "
                     f"{row['questions_per_second'] / single:.2f} |")
    return "\n".join(lines)


def write_results(out: Path, table: str, raw: dict) -> Path:
    """The table as Markdown and the raw numbers as JSON, one pair of files per kind of machine."""
    from helpers.hardware import _cpu_flags, detect_hardware, machine_kind

    kind, hardware = machine_kind(), detect_hardware()
    machine = {"kind": kind, "cpu": hardware.name, "cores": hardware.cpu_cores,
               "bf16_units": BF16, "date": f"{datetime.now():%Y-%m-%d %H:%M}", "host": platform.node(),
               "flags": sorted(f for f in _cpu_flags().split() if f.startswith(("avx", "amx", "fma")))}
    header = f"{kind}: {machine['cpu']}, {machine['cores']} cores, {', '.join(machine['flags'])}; {machine['date']}\n\n"
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"training-speed-{kind}"  # the latest run of each kind of machine
    stem.with_suffix(".md").write_text(header + table + "\n")
    stem.with_suffix(".json").write_text(json.dumps({"machine": machine, **raw}, indent=1))
    return stem


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--only", default="", help="run only the training paths whose name contains this text "
                                                   "(or one of several, separated by |)")
    parser.add_argument("--no-eval", action="store_true", help="leave out the evaluation throughput")
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3: the first step is left out as warm-up, and a rate needs two more")
    ceiling = {"fp32": matmul_flops(torch.float32), "bf16": matmul_flops(torch.bfloat16)}
    print(f"matmul throughput: fp32 {ceiling['fp32'] / 1e9:.0f} GFLOP/s, bf16 {ceiling['bf16'] / 1e9:.0f} GFLOP/s")
    rows = training_rows(args.steps, args.only, ceiling)
    evals = [] if args.no_eval else eval_speed()
    table = markdown_tables(rows, evals)
    print(table)
    stem = write_results(Path(args.out), table, {"matmul_flops": ceiling, "training": rows, "evaluation": evals})
    print(f"written: {stem}.md and .json")


if __name__ == "__main__":
    main()
