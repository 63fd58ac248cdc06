"""Working with LoRA adapters: finding their layers, checking a merge, and timing generation."""
import time
from dataclasses import dataclass

import torch

from .cpu_decoding import fast_decoding


def peft_layers(model) -> list:
    """Names of the modules that still carry adapter weights (empty after a clean merge)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]


def next_token_logits(model, tokenizer, prompts) -> torch.Tensor:
    """The logits of the token after each prompt (a list of message lists), one row per prompt."""
    rows = []
    model.eval()
    for prompt in prompts:
        inputs = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True).to(model.device)
        with torch.no_grad():
            rows.append(model(**inputs).logits[0].float().cpu())  # every position; on the CPU, to compare across devices
    return torch.cat(rows)


@dataclass
class MergeCheck:
    max_logit_difference: float   # largest |merged - adapter| over every position of every prompt
    top_token_agreement: float    # share of positions where both models rank the same token first
    same_generations: bool        # greedy replies identical for every prompt
    peft_layers_left: int         # adapter modules still inside the merged model
    tolerance: float

    @property
    def ok(self) -> bool:
        return (self.max_logit_difference <= self.tolerance and self.same_generations
                and self.peft_layers_left == 0)

    def __str__(self):
        verdict = "the merge is faithful" if self.ok else "the merge DIFFERS from the adapter model"
        return (f"{verdict}: max logit difference {self.max_logit_difference:.2e} (tolerance "
                f"{self.tolerance:g}), top token agrees at {self.top_token_agreement:.1%} of positions, "
                f"generations {'identical' if self.same_generations else 'differ'}, "
                f"{self.peft_layers_left} PEFT layers left")


def verify_merge(adapter_model, merged_model, tokenizer, prompts, tolerance: float = 1e-3,
                 max_new_tokens: int = 12) -> MergeCheck:
    """Compare a merged model with the adapter model it came from, on real prompts."""
    from .evaluation.replies import generate_replies

    if not prompts:
        raise ValueError("verify_merge needs at least one prompt (a list of messages) to compare on")
    adapter_logits = next_token_logits(adapter_model, tokenizer, prompts)
    merged_logits = next_token_logits(merged_model, tokenizer, prompts)
    agree = (adapter_logits.argmax(-1) == merged_logits.argmax(-1)).float().mean().item()
    same = (generate_replies(adapter_model, tokenizer, prompts, max_new_tokens)
            == generate_replies(merged_model, tokenizer, prompts, max_new_tokens))
    return MergeCheck((adapter_logits - merged_logits).abs().max().item(), agree, same,
                      len(peft_layers(merged_model)), tolerance)


def generation_speed(model, tokenizer, prompt, new_tokens: int = 32, repeats: int = 3) -> float:
    """Generated tokens per second for one prompt, greedy, best of `repeats` (after a warm-up), decoded as the
    course's helpers decode (`cpu_decoding.fast_decoding` on a CPU, for every model alike)."""
    inputs = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    model.eval()

    def once(tokens=new_tokens):
        start = time.perf_counter()
        with torch.no_grad(), fast_decoding(model):
            model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)
        return time.perf_counter() - start

    once(2)  # the first call pays for one-off set-up; two tokens are enough to pay it
    return new_tokens / min(once() for _ in range(repeats))
