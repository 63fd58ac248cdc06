"""The exercises of lesson 03 (LoRA and QLoRA): their data and their self-checks."""
import copy

import torch

from . import trainer_checks
from .checks import Hint, Skip, exercise_check

SHAPES = [(576, 576), (576, 192), (1536, 576), (49152, 576)]  # (d_out, d_in) of layers in SmolLM2-135M
BUDGET = 1_000_000
ALL_LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def _wrapped(model, config):
    from peft import get_peft_model

    return get_peft_model(copy.deepcopy(model), config)


@exercise_check("Exercise 1 (count LoRA parameters)")
def check_lora_parameters(lora_parameters, attention_total, model):
    from peft import LoraConfig

    for d_out, d_in in SHAPES:
        for r in (1, 8, 32):
            expected = r * (d_in + d_out)
            got = lora_parameters(d_in, d_out, r)
            if got != expected:
                raise Hint(f"lora_parameters({d_in}, {d_out}, {r}) gave {got}, expected {expected}: "
                           f"A is r x d_in and B is d_out x r")
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    actual, _ = _wrapped(model, config).get_nb_trainable_parameters()
    if attention_total != actual:
        raise Hint(f"attention_total={attention_total:,} but peft counts {actual:,}: q_proj and v_proj have "
                   "different shapes, and there is one of each in every decoder layer")
    return f"correct: {actual:,} trainable parameters, as peft counts them"


@exercise_check("Exercise 2 (fit a budget)")
def check_budget(config, model):
    from peft import LoraConfig

    if not isinstance(config, LoraConfig):
        raise Hint(f"give a peft LoraConfig, got {type(config).__name__}")
    peft_model = _wrapped(model, config)
    targeted = {name.split(".")[-1] for name in _lora_modules(peft_model)}
    trainable, _ = peft_model.get_nb_trainable_parameters()
    if targeted != ALL_LINEAR:
        raise Hint(f"the adapter must reach every attention and MLP projection; missing: "
                   f"{sorted(ALL_LINEAR - targeted)}")
    if trainable > BUDGET:
        raise Hint(f"{trainable:,} trainable parameters is over the budget of {BUDGET:,}: lower r")
    bigger = _wrapped(model, LoraConfig(r=config.r + 1, target_modules=config.target_modules, task_type="CAUSAL_LM"))
    if bigger.get_nb_trainable_parameters()[0] <= BUDGET:
        raise Hint(f"r={config.r} fits, but r={config.r + 1} would fit too: use the largest rank that fits")
    return f"correct: r={config.r} on every linear layer trains {trainable:,} parameters"


def _lora_modules(peft_model):
    from peft.tuners.lora import LoraLayer

    return [name for name, module in peft_model.named_modules() if isinstance(module, LoraLayer)]


@exercise_check("Exercise 3 (scaling)")
def check_scaling(alpha_for_r32, alpha_for_rslora_r16, model):
    from peft import LoraConfig

    for alpha, r, rslora in ((alpha_for_r32, 32, False), (alpha_for_rslora_r16, 16, True)):
        config = LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora, target_modules=["q_proj"], task_type="CAUSAL_LM")
        layer = _wrapped(model, config).base_model.model.model.layers[0].self_attn.q_proj
        scaling = layer.scaling["default"]
        if abs(scaling - 2.0) > 1e-6:
            rule = "alpha / sqrt(r)" if rslora else "alpha / r"
            raise Hint(f"r={r}{' with use_rslora' if rslora else ''}, lora_alpha={alpha} scales the update by "
                       f"{scaling:g}, not 2: the scale is {rule}")
    return "correct: both adapters scale their update by 2, like r=8 with lora_alpha=16"


@exercise_check("Exercise 4 (predict the 4-bit size)")
def check_four_bit_estimate(estimate_bytes, model, model_path):
    from ..hardware import four_bit_problem

    problem = four_bit_problem()
    if problem:
        raise Skip(f"the check loads the 4-bit model, and {problem}")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    actual = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=quantization,  # at check time
                                                  dtype=torch.float32).get_memory_footprint()
    error = (estimate_bytes - actual) / actual
    if abs(error) > 0.01:
        linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
                     and m is not model.get_output_embeddings())
        raise Hint(f"your estimate is {estimate_bytes / 2**20:.1f} MB, the 4-bit model takes {actual / 2**20:.1f} MB "
                   f"({error:+.0%}). {linear:,} weights sit in quantized linear layers (lm_head is tied to the "
                   "embeddings and stays unquantized); everything else keeps 4 bytes per number")
    return f"correct: {estimate_bytes / 2**20:.1f} MB predicted, {actual / 2**20:.1f} MB measured"


class _Holder(torch.nn.Module):
    """One linear layer under a name peft can target, for the reference LoRA layer."""

    def __init__(self, layer):
        super().__init__()
        self.proj = layer


def _peft_reference(base, r, alpha):
    from peft import LoraConfig, get_peft_model

    wrapped_layer = get_peft_model(_Holder(copy.deepcopy(base)), LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"]))
    return wrapped_layer.base_model.model.proj


def _built(LoRALinear, base, r, alpha):
    layer = LoRALinear(copy.deepcopy(base), r, alpha)
    missing = [name for name in ("base", "A", "B", "scaling") if not hasattr(layer, name)]
    if missing:
        raise Hint(f"the layer has no {', '.join(missing)}: keep the frozen layer as self.base, the matrices as "
                   "self.A and self.B (torch.nn.Parameter) and alpha / r as self.scaling")
    d_out, d_in = base.weight.shape
    if tuple(layer.A.shape) != (r, d_in) or tuple(layer.B.shape) != (d_out, r):
        raise Hint(f"A is {tuple(layer.A.shape)} and B {tuple(layer.B.shape)}; for a {d_in} -> {d_out} layer with "
                   f"r={r}, A is ({r}, {d_in}) (it reads the input) and B ({d_out}, {r}) (it writes the output)")
    trainable = sorted(name for name, p in layer.named_parameters() if p.requires_grad)
    if trainable != ["A", "B"]:
        raise Hint(f"the trainable parameters are {trainable}: only A and B train; freeze the base layer "
                   "(self.base.requires_grad_(False))")
    return layer


@exercise_check("Exercise 5 (LoRA from scratch)")
def check_lora_linear(LoRALinear, model):
    base = model.model.layers[0].self_attn.v_proj  # 576 -> 192: not square, so A and B cannot be swapped
    r, alpha = 4, 8
    layer = _built(LoRALinear, base, r, alpha)
    x = torch.randn(2, 5, base.in_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if not torch.allclose(layer(x), base(x), atol=1e-6):
            raise Hint("before training the layer must give exactly the base layer's output: start B at zero")
        if not layer.A.abs().sum() > 0:
            raise Hint("A starts at zero too, so no gradient can reach A or B: start A random "
                       "(torch.nn.init.kaiming_uniform_(self.A, a=5 ** 0.5), as peft does)")
    reference = _peft_reference(base, r, alpha)
    with torch.no_grad():  # the same A and B in both, B non-zero so the update counts
        layer.B.normal_(generator=torch.Generator().manual_seed(1))
        reference.lora_A["default"].weight.copy_(layer.A)
        reference.lora_B["default"].weight.copy_(layer.B)
    weights = torch.randn(2, 5, base.out_features, generator=torch.Generator().manual_seed(2))
    ours, theirs = layer(x), reference(x)
    if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
        raise Hint(f"with the same A and B, peft's LoRA layer gives another output (largest difference "
                   f"{(ours - theirs).abs().max():.3g}): the output is base(x) + x A^T B^T * alpha / r")
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    for name, mine, peft_grad in (("A", layer.A.grad, reference.lora_A["default"].weight.grad),
                                  ("B", layer.B.grad, reference.lora_B["default"].weight.grad)):
        if mine is None or not torch.allclose(mine, peft_grad, rtol=1e-4, atol=1e-5):
            raise Hint(f"the output matches peft's but the gradient of {name} does not: compute the update "
                       "with differentiable torch operations on self.A and self.B (no .data, no detach)")
    return (f"correct: your layer matches peft's LoRA layer in output and in the gradients of A and B "
            f"({r * (base.in_features + base.out_features):,} trainable parameters on v_proj)")


LORA_STEPS, LORA_BATCH = 16, 4  # exercise 6 trains at most 16 steps of 4 conversations, as lesson 03 does
HELD_OUT = 48                   # the held-out questions it scores, as lessons 02 and 03 do
LORA_TARGET = 0.20              # the exact match it asks for on them
ADAPTER_RUN = "outputs/03_exercise_lora"  # where it saves the adapter; lesson 05's exercise 5 evaluates it


@exercise_check("Exercise 6 (train an adapter to a target)")
def check_lora_training(make_lora_trainer, model_source):
    from ..data import load_chat_dataset
    from ..evaluation import held_out_questions, score_held_out
    from ..models import load_model
    from ..training import fresh_output_dir

    model, tokenizer = load_model(model_source)  # a fresh model: the check trains the adapter from zero
    data = load_chat_dataset("offline")
    trainer = trainer_checks.built_trainer(make_lora_trainer, model, tokenizer, data["train"], LORA_STEPS, LORA_BATCH)
    if not hasattr(trainer.model, "peft_config"):
        raise Hint("the trainer fine-tunes every weight: pass a LoraConfig as SFTTrainer's peft_config")
    lora_b = [p for name, p in trainer.model.named_parameters() if "lora_B" in name]
    if any(p.abs().sum() > 0 for p in lora_b):
        raise Hint("the adapter does not start at zero (B is not zero): a fresh LoraConfig does; "
                   "do not load an adapter trained before")
    held_out = held_out_questions(data["test"], HELD_OUT)
    trainer_checks.trained_on_none_of(trainer, tokenizer, held_out)
    trained = trainer_checks.train(trainer)
    score = score_held_out(trainer.model, tokenizer, held_out).correct.mean()
    rate, steps = trainer.args.learning_rate, trainer.state.global_step
    if score < LORA_TARGET:
        why = (f"a learning rate of {rate:g} barely moves an adapter that starts at zero in {steps} steps: "
               "LoRA wants about ten times full fine-tuning's (lesson 03)") if rate < 5e-4 else \
              f"use the whole budget ({LORA_STEPS} steps of {LORA_BATCH}) and train on the assistant's replies only"
        raise Hint(f"after {steps} steps exact match is {score:.2f} on {len(held_out)} held-out questions, under "
                   f"{LORA_TARGET:.2f}: {why}")
    folder = fresh_output_dir(ADAPTER_RUN)
    trainer.save_model(folder)
    tokenizer.save_pretrained(folder)
    return (f"correct: {trained} at learning rate {rate:g}; exact match {score:.2f} on {len(held_out)} held-out "
            f"questions (target {LORA_TARGET:.2f}). Adapter saved in {folder}")
