"""Lesson 04 (adapters and merging) exercise checks: right answers pass, wrong ones get hints that name the fix."""

from helpers.exercises import lesson04
from helpers.exercises.checks import FAILED, PASSED


def test_lesson04_hints(offline_model, tmp_path, capsys):
    import torch
    from peft import LoraConfig, get_peft_model


    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(__import__("copy").deepcopy(offline_model[0]), config).save_pretrained(tmp_path)
    reference = lesson04.adapter_model(tmp_path)
    layer = reference.base_model.model.model.layers[0].self_attn.q_proj
    A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    assert lesson04.check_merged_weight(layer.base_layer.weight + B @ A, tmp_path) == FAILED  # scale 2 left out
    assert "multiply B @ A by the scaling" in capsys.readouterr().out
    assert lesson04.check_merged_weight(A, tmp_path) == FAILED
    assert "B @ A, not A @ B" in capsys.readouterr().out
    assert lesson04.check_merged_weight(layer.base_layer.weight + 2 * B @ A, tmp_path) == PASSED
    assert lesson04.check_fixed_merge(lesson04.merge_into_4bit, tmp_path, offline_model[1]) == FAILED
    assert "layers are still 4-bit" in capsys.readouterr().out
    assert lesson04.check_loaded(lambda folder: reference.base_model.model, tmp_path, offline_model[1]) == FAILED
    assert "wrap the base model with PeftModel.from_pretrained" in capsys.readouterr().out
    from helpers.exercises.lesson04 import adapter_model  # the check's reference, however it is imported
    for shortcut in (adapter_model, lambda folder: lesson04.adapter_model(folder)):
        assert lesson04.check_loaded(shortcut, tmp_path, offline_model[1]) == FAILED
        assert "the check's own reference: write the loading yourself" in capsys.readouterr().out
    assert type(lesson04.adapter_model(tmp_path)).__name__.startswith("PeftModel")  # and it is put back


def test_lesson04_style_hints_say_how_to_switch(capsys):

    def always_formal(model, tokenizer, question, style):  # forgot to disable the adapters for "base"
        return "Certainly. The answer is: Yes"

    assert lesson04.check_answer_in_style(always_formal, None, None) == FAILED
    assert "asked for 'base'" in capsys.readouterr().out

    def never_switches(model, tokenizer, question, style):  # "base" right, but set_adapter never called
        return "Yes." if style == "base" else "Certainly. The answer is: Yes"

    assert lesson04.check_answer_in_style(never_switches, None, None) == FAILED
    assert "model.set_adapter('shout')" in capsys.readouterr().out
    assert lesson04.check_answer_in_style(lambda m, t, q, style: 42, None, None) == FAILED
    assert "must return the reply as a string" in capsys.readouterr().out


def test_exercise_1_wants_the_models_own_replies_not_fixed_styled_strings(offline_model, capsys):
    import copy

    from peft import PeftModel

    from helpers import styles

    folders = {style: styles.style_adapter(style) for style in styles.STYLES}  # cached after the first run
    model = PeftModel.from_pretrained(copy.deepcopy(offline_model[0]), folders["formal"], adapter_name="formal")
    model.load_adapter(folders["shout"], adapter_name="shout")
    tokenizer = offline_model[1]

    def fixed(model, tokenizer, question, style):  # right style, no model: "Yes" to every question
        return "Yes." if style == "base" else styles.styled("Yes", style)

    def honest(model, tokenizer, question, style):
        if style == "base":
            with model.disable_adapter():
                return helpers.chat(model, tokenizer, question, max_new_tokens=24)
        model.set_adapter(style)
        return helpers.chat(model, tokenizer, question, max_new_tokens=24)

    import helpers

    assert lesson04.check_answer_in_style(fixed, model, tokenizer) == FAILED
    assert "let the model answer (helpers.chat, greedy), do not write the reply yourself" in capsys.readouterr().out
    assert lesson04.check_answer_in_style(honest, model, tokenizer) == PASSED


def test_the_4bit_merge_to_look_at_is_none_with_the_reason_where_4bit_cannot_run(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_NO_4BIT", "1")
    assert lesson04.merge_into_4bit("an adapter folder it never reads") is None
    assert "No 4-bit merge to look at here: 4-bit is turned off" in capsys.readouterr().out
