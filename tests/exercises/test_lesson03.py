"""Lesson 03 (LoRA and QLoRA) exercise checks: right answers pass, wrong ones get hints that name the fix."""

import pytest
import torch

from helpers.exercises import lesson03
from helpers.exercises.checks import FAILED, PASSED


def test_lesson03_hints_name_what_is_wrong(offline_model, capsys):
    from peft import LoraConfig


    model = offline_model[0]
    assert lesson03.check_lora_parameters(lambda d_in, d_out, r: r * d_in, 0, model) == FAILED
    assert "A is r x d_in and B is d_out x r" in capsys.readouterr().out
    assert lesson03.check_lora_parameters(lambda d_in, d_out, r: r * (d_in + d_out), 1, model) == FAILED
    assert "peft counts 460,800" in capsys.readouterr().out
    cases = [(LoraConfig(r=3, target_modules=["q_proj", "v_proj"]), "missing: ['down_proj'"),
             (LoraConfig(r=4, target_modules="all-linear"), "over the budget"),
             (LoraConfig(r=2, target_modules="all-linear"), "r=3 would fit too"),
             ({"r": 3}, "give a peft LoraConfig")]
    for config, hint in cases:
        assert lesson03.check_budget(config, model) == FAILED
        assert hint in capsys.readouterr().out
    assert lesson03.check_scaling(32, 8, model) == FAILED
    assert "lora_alpha=32 scales the update by 1" in capsys.readouterr().out
    assert lesson03.check_scaling(64, 16, model) == FAILED
    assert "alpha / sqrt(r)" in capsys.readouterr().out


def test_lesson03_four_bit_estimate_hint_counts_the_linear_weights(offline_model, capsys):
    import helpers

    model = offline_model[0]
    everything = sum(p.numel() for p in model.parameters())
    assert lesson03.check_four_bit_estimate(everything // 2, model, helpers.model_path("offline")) == FAILED
    assert "106,168,320 weights sit in quantized linear layers" in capsys.readouterr().out


class LoRALinear(torch.nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.A = torch.nn.Parameter(torch.empty(r, base.in_features))
        torch.nn.init.kaiming_uniform_(self.A, a=5 ** 0.5)
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r))
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scaling


class Unscaled(LoRALinear):
    def forward(self, x):
        return self.base(x) + x @ self.A.T @ self.B.T


class BaseTrains(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.base.requires_grad_(True)


class Detached(LoRALinear):
    def forward(self, x):
        return self.base(x) + (x @ self.A.detach().T @ self.B.T) * self.scaling


class Transposed(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.A = torch.nn.Parameter(torch.zeros(base.out_features, r))
        self.B = torch.nn.Parameter(torch.randn(r, base.in_features))


class BothZero(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        torch.nn.init.zeros_(self.A)


class BRandom(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        torch.nn.init.normal_(self.B)


@pytest.mark.parametrize("answer, hint", [
    (Unscaled, "peft's LoRA layer gives another output"), (BaseTrains, "freeze the base layer"),
    (Detached, "the gradient of A does not"), (Transposed, "A is (4, 576) (it reads the input)"),
    (BothZero, "start A random"), (BRandom, "start B at zero"),
    (lambda base, r, alpha: base, "keep the frozen layer as self.base")])
def test_lora_from_scratch_matches_peft_and_each_mistake_gets_its_hint(offline_model, capsys, answer, hint):
    assert lesson03.check_lora_linear(LoRALinear, offline_model[0]) == PASSED
    capsys.readouterr()
    assert lesson03.check_lora_linear(answer, offline_model[0]) == FAILED
    assert hint in capsys.readouterr().out


def test_the_4bit_estimate_is_skipped_with_the_reason_where_4bit_cannot_run(offline_model, capsys, monkeypatch):
    import helpers
    from helpers.exercises.checks import SKIPPED

    monkeypatch.setenv("COURSE_NO_4BIT", "1")
    assert lesson03.check_four_bit_estimate(1, offline_model[0], helpers.model_path("offline")) == SKIPPED
    assert "skipped on this machine: the check loads the 4-bit model, and 4-bit is turned off" in capsys.readouterr().out
