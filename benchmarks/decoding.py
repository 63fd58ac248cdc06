"""Greedy decoding on this CPU with each layer's stock product and with `cpu_decoding.fast_decoding`,
with and without its oneDNN products.

    .venv/bin/python benchmarks/decoding.py [--tokens 32] [--out benchmarks/results]

For the course's two offline models (SmolLM2-135M-Instruct and the Gemma-3-270M base), SmolLM2 with lesson 03's
LoRA adapter unmerged (`recipes.lora_adapter`, trained once if not cached), and the batch sizes the lessons
generate at (1: a single chat; 7: lesson 05's GSM8K + HumanEval batch; 16: the held-out scoring), generates a
fixed number of new tokens from held-out prompts, stock, fast without oneDNN (`(W @ x.T).T` for up to 128
rows, the stock product above) and fast, in turn, best of two each, and checks all give the same tokens.
With the adapter a fourth mode, fast with PEFT's own LoRA forward, shows what the LoRA sum in two calls adds.
Prints a Markdown table and writes it under --out as `decoding-<machine kind>.md`, with the raw numbers as .json.
About 5 minutes on a 2-core CPU.
"""
import argparse
import json
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from unittest import mock

import torch

import helpers
from helpers import cpu_decoding, evaluation, recipes
from helpers.cpu_decoding import fast_decoding

MODES = ("stock", "no oneDNN", "fast")
ADAPTER_MODES = MODES + ("PEFT's LoRA forward",)
ADAPTER = "offline + LoRA adapter"


def generate(model, inputs, tokens: int, mode: str):
    """(seconds, new token ids) of one greedy generation of exactly `tokens` new tokens."""
    fast = nullcontext() if mode == "stock" else fast_decoding(model)
    without_onednn = mock.patch("torch.backends.mkldnn.is_available", return_value=False)
    peft_forward = mock.patch.object(cpu_decoding, "_lora_linear_class", lambda: None)
    patch = {"no oneDNN": without_onednn, "PEFT's LoRA forward": peft_forward}.get(mode, nullcontext())
    start = time.perf_counter()
    with torch.no_grad(), patch, fast:  # the patch first: fast_decoding looks for LoRA layers on entry
        output = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    return time.perf_counter() - start, output[:, inputs["input_ids"].shape[1]:]


def load(source: str):
    if source != ADAPTER:
        return helpers.load_model(source)
    from peft import PeftModel

    model, tokenizer = helpers.load_model("offline")
    return PeftModel.from_pretrained(model, recipes.lora_adapter(helpers.settings("cpu"))), tokenizer


def rows_for(source: str, prompts: list, batches: tuple, tokens: int) -> list:
    model, tokenizer = load(source)
    model.eval()
    modes = ADAPTER_MODES if source == ADAPTER else MODES
    tokenizer.padding_side = "left"
    rows = []
    for batch in batches:
        texts = [evaluation.chat_prompt(p) for p in prompts[:batch]]  # SmolLM2's template: the base model has none
        inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        generate(model, inputs, 2, "stock")  # warm-up
        times, ids = {mode: [] for mode in modes}, {}
        for _ in range(2):
            for mode in modes:
                seconds, ids[mode] = generate(model, inputs, tokens, mode)
                times[mode].append(seconds)
        best = {mode: min(times[mode]) for mode in modes}
        rows.append({"model": source, "batch": batch, "stock_s": best["stock"], "no_onednn_s": best["no oneDNN"],
                     "fast_s": best["fast"], "peft_lora_forward_s": best.get("PEFT's LoRA forward"),
                     "same_tokens": all(torch.equal(ids["stock"], ids[m]) for m in modes)})
        print(f"{source}, batch {batch}: " + ", ".join(f"{m} {best[m]:.2f} s" for m in modes), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per generation")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    from helpers.hardware import detect_hardware, machine_kind

    questions = evaluation.held_out_questions(helpers.load_chat_dataset()["test"], 16)
    prompts = [evaluation.prompt_of(q["messages"]) for q in questions]
    rows = [row for source in ("offline", "offline-base", ADAPTER) for row in rows_for(source, prompts, (1, 7, 16), args.tokens)]
    kind, hardware = machine_kind(), detect_hardware()
    lines = [f"# Decoding: stock vs `cpu_decoding.fast_decoding`, on {kind}", "",
             f"- {hardware.name}, {hardware.cpu_cores} cores, {datetime.now():%Y-%m-%d}; {args.tokens} new tokens per "
             f"generation (prefill included), best of 2", "",
             "| model | batch | stock (s) | fast without oneDNN (s) | fast (s) | fast, PEFT's LoRA forward (s) "
             "| speed-up without oneDNN | speed-up | stock tokens/s | fast tokens/s | same tokens |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        generated = r["batch"] * args.tokens
        peft_forward = "-" if r["peft_lora_forward_s"] is None else f"{r['peft_lora_forward_s']:.2f}"
        lines.append(f"| {r['model']} | {r['batch']} | {r['stock_s']:.2f} | {r['no_onednn_s']:.2f} | {r['fast_s']:.2f} | "
                     f"{peft_forward} | "
                     f"{r['stock_s'] / r['no_onednn_s']:.2f}x | {r['stock_s'] / r['fast_s']:.2f}x | "
                     f"{generated / r['stock_s']:.0f} | {generated / r['fast_s']:.0f} | {'yes' if r['same_tokens'] else 'NO'} |")
    table = "\n".join(lines) + "\n"
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"decoding-{kind}.md").write_text(table)
    machine = {"kind": kind, "cpu": hardware.name, "cores": hardware.cpu_cores, "date": f"{datetime.now():%Y-%m-%d}"}
    (out / f"decoding-{kind}.json").write_text(json.dumps({"machine": machine, "tokens": args.tokens, "rows": rows}, indent=1))
    print(f"written: {out / f'decoding-{kind}.md'} and .json")


if __name__ == "__main__":
    main()
