"""The exercises of lesson 03 (LoRA and QLoRA): their data and their self-checks."""
import copy

import torch

from .checks import Hint, exercise_check

SHAPES = [(576, 576), (576, 192), (1536, 576), (49152, 576)]  # (d_out, d_in) of layers in SmolLM2-135M
BUDGET = 1_000_000
ALL_LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def wrapped(model, config):
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
    actual, _ = wrapped(model, config).get_nb_trainable_parameters()
    if attention_total != actual:
        raise Hint(f"attention_total={attention_total:,} but peft counts {actual:,}: q_proj and v_proj have "
                   "different shapes, and there is one of each in every decoder layer")
    return f"correct: {actual:,} trainable parameters, as peft counts them"


@exercise_check("Exercise 2 (fit a budget)")
def check_budget(config, model):
    from peft import LoraConfig

    if not isinstance(config, LoraConfig):
        raise Hint(f"give a peft LoraConfig, got {type(config).__name__}")
    peft_model = wrapped(model, config)
    targeted = {name.split(".")[-1] for name in _lora_modules(peft_model)}
    trainable, _ = peft_model.get_nb_trainable_parameters()
    if targeted != ALL_LINEAR:
        raise Hint(f"the adapter must reach every attention and MLP projection; missing: "
                   f"{sorted(ALL_LINEAR - targeted)}")
    if trainable > BUDGET:
        raise Hint(f"{trainable:,} trainable parameters is over the budget of {BUDGET:,}: lower r")
    bigger = wrapped(model, LoraConfig(r=config.r + 1, target_modules=config.target_modules, task_type="CAUSAL_LM"))
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
        layer = wrapped(model, config).base_model.model.model.layers[0].self_attn.q_proj
        scaling = layer.scaling["default"]
        if abs(scaling - 2.0) > 1e-6:
            rule = "alpha / sqrt(r)" if rslora else "alpha / r"
            raise Hint(f"r={r}{' with use_rslora' if rslora else ''}, lora_alpha={alpha} scales the update by "
                       f"{scaling:g}, not 2: the scale is {rule}")
    return "correct: both adapters scale their update by 2, like r=8 with lora_alpha=16"


def four_bit_footprint(model_path) -> int:
    """The memory footprint (bytes) of the model loaded in 4-bit NF4, as transformers reports it."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=quantization, dtype=torch.float32)
    return model.get_memory_footprint()


@exercise_check("Exercise 4 (predict the 4-bit size)")
def check_four_bit_estimate(estimate_bytes, model, model_path):
    from ..hardware import four_bit_problem

    problem = four_bit_problem()
    if problem:
        raise Hint(f"this machine cannot load 4-bit models to check against ({problem})")
    actual = four_bit_footprint(model_path)
    error = (estimate_bytes - actual) / actual
    if abs(error) > 0.01:
        linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
                     and m is not model.get_output_embeddings())
        raise Hint(f"your estimate is {estimate_bytes / 2**20:.1f} MB, the 4-bit model takes {actual / 2**20:.1f} MB "
                   f"({error:+.0%}). {linear:,} weights sit in quantized linear layers (lm_head is tied to the "
                   "embeddings and stays unquantized); everything else keeps 4 bytes per number")
    return f"correct: {estimate_bytes / 2**20:.1f} MB predicted, {actual / 2**20:.1f} MB measured"
