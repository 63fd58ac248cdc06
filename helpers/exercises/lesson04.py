"""The exercises of lesson 04 (adapters): their data and their self-checks."""
import torch

from ..adapters import peft_layers, verify_merge
from .checks import Hint, exercise_check, refusing
from ..evaluation.replies import generate_replies, prompt_of
from ..styles import STYLES, style_of

QUESTIONS = [
    "Is the sky blue on a clear day? Answer Yes or No.",
    "Which is larger, 7 or 12? Answer with the number.",
    "Name the planet we live on.",
]


def held_out_prompts(count: int = 4) -> list:
    from ..data import load_chat_dataset

    rows = [r for r in load_chat_dataset("offline")["test"] if r["kind"] != "generation" and len(r["messages"]) <= 3]
    return [prompt_of(r["messages"]) for r in rows[:count]]


def adapter_model(adapter_dir, dtype=torch.float32, quantization_config=None):
    """The base model named in the adapter's config, with the adapter on top (the reference answer)."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM

    base_path = PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype, quantization_config=quantization_config)
    return PeftModel.from_pretrained(base, adapter_dir)


def _replies_in_each_style(model, tokenizer) -> dict:
    """(question, style) -> the model's own greedy reply, made at check time; the active adapter is put back."""
    from ..models import chat

    active, replies = model.active_adapter, {}
    for question in QUESTIONS:
        with model.disable_adapter():
            replies[question, "base"] = chat(model, tokenizer, question, max_new_tokens=32)
        for style in STYLES:
            model.set_adapter(style)
            replies[question, style] = chat(model, tokenizer, question, max_new_tokens=32)
    model.set_adapter(active)
    return replies


@exercise_check("Exercise 1 (answer in a style)")
def check_answer_in_style(answer, model, tokenizer):
    replies = {}
    for question in QUESTIONS:
        for style in ("base", *STYLES):
            reply = answer(model, tokenizer, question, style)
            if not isinstance(reply, str):
                raise Hint(f"answer(...) must return the reply as a string, got {type(reply).__name__}")
            if style_of(reply) != style:
                fix = ("use the model with its adapters disabled (`with model.disable_adapter():`)" if style == "base"
                       else f"activate the adapter first: model.set_adapter({style!r})")
                raise Hint(f"asked for {style!r}, {question!r} got {reply!r}: {fix}")
            replies[question, style] = reply.strip()
    generated = _replies_in_each_style(model, tokenizer)  # the model's own replies, once every style looks right
    for (question, style), reply in replies.items():
        own = generated[question, style]
        if not reply or not (own.startswith(reply) or reply.startswith(own)):
            raise Hint(f"asked for {style!r}, {question!r} got {reply!r}, but the model with that adapter says "
                       f"{own!r}: let the model answer (helpers.chat, greedy), do not write the reply yourself")
    first = {}
    for (_, style), reply in replies.items():
        first.setdefault(style, reply)
    return "correct: every reply came in the style asked for, e.g. " + " | ".join(f"{s}: {r!r}" for s, r in first.items())


@exercise_check("Exercise 2 (load an adapter the chapter's way)")
def check_loaded(load_with_adapter, adapter_dir, tokenizer):
    from peft import PeftModel

    with refusing(adapter_model, why="lesson04.adapter_model is the check's own reference: write the loading yourself"):
        model = load_with_adapter(adapter_dir)
    if not isinstance(model, PeftModel):
        raise Hint(f"got a {type(model).__name__}: wrap the base model with PeftModel.from_pretrained(base, adapter_dir)")
    if not peft_layers(model):
        raise Hint("the model holds no adapter layers: was the adapter merged or unloaded?")
    prompts = held_out_prompts(2)
    got = generate_replies(model, tokenizer, prompts, max_new_tokens=12)
    expected = generate_replies(adapter_model(adapter_dir), tokenizer, prompts, max_new_tokens=12)
    if got != expected:
        raise Hint(f"the replies differ from the adapter model's ({got} vs {expected}): load the base model "
                   "named by PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path, in float32")
    return f"correct: {got[0]!r}"


@exercise_check("Exercise 3 (merge one layer by hand)")
def check_merged_weight(merged_weight, adapter_dir):
    merged = adapter_model(adapter_dir).merge_and_unload()  # peft's own merge, at check time
    expected = merged.model.layers[0].self_attn.q_proj.weight.detach()
    if not isinstance(merged_weight, torch.Tensor) or merged_weight.shape != expected.shape:
        shape = getattr(merged_weight, "shape", None)
        raise Hint(f"expected a tensor of shape {tuple(expected.shape)} (like W), got {shape}: B @ A, not A @ B")
    difference = (merged_weight.detach().float() - expected).abs().max().item()
    if difference > 1e-5:
        raise Hint(f"your weight differs from merge_and_unload's by up to {difference:.2e}: did you multiply "
                   "B @ A by the scaling (lora_alpha / r, in layer.scaling)?")
    return f"correct: matches merge_and_unload to {difference:.1e}"


def merge_into_4bit(adapter_dir):
    """The broken merge of exercise 4: the adapter merged into a 4-bit base (None, with the reason printed,
    on a machine without 4-bit kernels: the exercise's fix and its check need none)."""
    from transformers import BitsAndBytesConfig

    from ..hardware import four_bit_problem

    problem = four_bit_problem()
    if problem:
        print(f"No 4-bit merge to look at here: {problem}. Read the lesson's section 5 for what it shows; "
              "the fix below and its check run in full precision and need no 4-bit kernels.")
        return None

    from ..cpu_4bit import use_vectorized_dequantize
    use_vectorized_dequantize()  # on an x86 CPU without AVX-512 only: the same numbers, faster

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    return adapter_model(adapter_dir, quantization_config=quantization).merge_and_unload()


@exercise_check("Exercise 4 (fix the merge)")
def check_fixed_merge(merge, adapter_dir, tokenizer):
    merged = merge(adapter_dir)
    quantized = [name for name, module in merged.named_modules() if "4bit" in type(module).__name__]
    if quantized:
        raise Hint(f"{len(quantized)} layers are still 4-bit ({quantized[0]}, ...): load the base model "
                   "in float32 before applying and merging the adapter")
    check = verify_merge(adapter_model(adapter_dir), merged, tokenizer, held_out_prompts(4))
    if not check.ok:
        raise Hint(str(check))
    return f"correct: {check}"
