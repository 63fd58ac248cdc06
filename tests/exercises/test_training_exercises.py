"""The exercises that train (02-6, 03-6) and the one that evaluates the learner's own adapter (05-5): the ways
around their checks are closed, and each mistake gets the hint that names it. The passing path runs in the
solution notebooks under nbval; here each trick is stopped before training, or after two steps."""
import copy

import pandas as pd
import pytest
from trl import SFTConfig, SFTTrainer

import helpers
from helpers import evaluation, templates
from helpers.exercises import lesson02, lesson03, lesson05
from helpers.exercises.checks import FAILED, NOT_DONE

pytestmark = pytest.mark.slow  # each check loads the real model


def formatting_func(example):
    text = f"### Instruction:\n{example['instruction']}\n\n"
    if example["input"]:
        text += f"### Input:\n{example['input']}\n\n"
    return text + f"### Response:\n{example['output']}"


def args(tmp_path, **changes):
    values = dict(output_dir=str(tmp_path), max_steps=16, per_device_train_batch_size=4, learning_rate=1e-4,
                  report_to="none", save_strategy="no", **helpers.detect_hardware().trainer_precision())
    return SFTConfig(**{**values, **changes})


def sft_trainer_maker(tmp_path, before=None, dataset=None, model=None, **changes):
    """make_sft_trainer as a learner might write it; `before(model)` runs first, `dataset` replaces the one given."""
    def make(given_model, tokenizer, train_dataset):
        if before:
            before(given_model)
        return SFTTrainer(model=model or given_model, args=args(tmp_path, **changes), processing_class=tokenizer,
                          train_dataset=dataset if dataset is not None else train_dataset, formatting_func=formatting_func)
    return make


def held_out_as_alpaca():
    from datasets import Dataset

    rows = evaluation.held_out_rows(helpers.load_chat_dataset()["test"], single_turn=True)
    return Dataset.from_list([lesson02._as_alpaca(r["messages"]) for r in rows])  # as alpaca_dataset() converts


def loaded_over(model):  # what loading a fine-tuned checkpoint into the given model looks like to the check
    model.model.norm.weight.data += 0.5


@pytest.mark.parametrize("case, hint", [
    ("over budget", "max_steps is 40: set it in SFTConfig, at most 16"),
    ("big batches", "8 conversations a step (per_device_train_batch_size x gradient_accumulation_steps) is over"),
    ("checkpoint loaded", "weights changed before training began"),
    ("held-out data", "the trainer trains on"),
    ("no formatting_func", "not your formatting_func's text"),
])
def test_exercise_02_6_refuses_each_way_around_training(tmp_path, capsys, case, hint):
    if case == "no formatting_func":  # the rows in another format, no formatting_func given
        def make(model, tokenizer, train_dataset):
            text = train_dataset.map(lambda r: {"text": f"Q: {r['instruction']} {r['input']}\nA: {r['output']}"},
                                     remove_columns=train_dataset.column_names)
            return SFTTrainer(model=model, args=args(tmp_path), processing_class=tokenizer, train_dataset=text)
    else:
        make = {"over budget": sft_trainer_maker(tmp_path, max_steps=40),
                "big batches": sft_trainer_maker(tmp_path, gradient_accumulation_steps=2),
                "checkpoint loaded": sft_trainer_maker(tmp_path, before=loaded_over),
                "held-out data": sft_trainer_maker(tmp_path, dataset=held_out_as_alpaca())}[case]
    assert lesson02.check_formatting_training(make, formatting_func, "offline") == FAILED
    assert hint in capsys.readouterr().out


def test_exercise_02_6_wants_exercise_1_right_and_the_trainer_returned(offline_model, tmp_path, capsys):
    assert lesson02.check_formatting_training(..., formatting_func, "offline") == NOT_DONE
    assert lesson02.check_formatting_training(sft_trainer_maker(tmp_path), lambda r: r["output"], "offline") == FAILED
    assert "exercise 1's formatting_func is not right yet" in capsys.readouterr().out
    other = copy.deepcopy(offline_model[0])
    assert lesson02.check_formatting_training(sft_trainer_maker(tmp_path, model=other), formatting_func, "offline") == FAILED
    assert "trains another model than the one passed in" in capsys.readouterr().out
    assert lesson02.check_formatting_training(lambda m, t, d: None, formatting_func, "offline") == FAILED
    assert "return the SFTTrainer it builds" in capsys.readouterr().out


def lora_trainer_maker(tmp_path, peft=True, after=None, **changes):
    def make(model, tokenizer, train_dataset):
        from peft import LoraConfig

        tokenizer.chat_template = templates.training_template()
        lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM") if peft else None
        trainer = SFTTrainer(model=model, args=args(tmp_path, assistant_only_loss=True, **changes),
                             processing_class=tokenizer, train_dataset=train_dataset, peft_config=lora)
        if after:
            after(trainer)
        return trainer
    return make


def trained_before(trainer):  # an adapter loaded from an earlier run: B is no longer zero
    for name, param in trainer.model.named_parameters():
        if "lora_B" in name:
            param.data.fill_(0.01)


def test_exercise_03_6_refuses_full_fine_tuning_and_a_loaded_adapter(tmp_path, capsys):
    assert lesson03.check_lora_training(lora_trainer_maker(tmp_path, peft=False), "offline") == FAILED
    assert "pass a LoraConfig as SFTTrainer's peft_config" in capsys.readouterr().out
    assert lesson03.check_lora_training(lora_trainer_maker(tmp_path, after=trained_before), "offline") == FAILED
    assert "the adapter does not start at zero" in capsys.readouterr().out
    assert lesson03.check_lora_training(lora_trainer_maker(tmp_path, max_steps=17), "offline") == FAILED
    assert "at most 16" in capsys.readouterr().out


def test_exercise_03_6_names_the_learning_rate_when_the_adapter_falls_short(tmp_path, capsys):
    # two steps at TRL's default rate: trained for real, scored on the held-out questions, short of the target
    assert lesson03.check_lora_training(lora_trainer_maker(tmp_path, max_steps=2, learning_rate=2e-5), "offline") == FAILED
    out = capsys.readouterr().out
    assert "after 2 steps exact match is" in out and "LoRA wants about ten times full fine-tuning's" in out
    assert not (tmp_path / "outputs").exists()  # nothing saved for a run that missed the target


def scored(correct: list) -> pd.DataFrame:
    return pd.DataFrame({"correct": correct})


def test_exercise_05_5_wants_the_paired_standard_error_and_the_right_verdict(capsys):
    n = lesson05.HELD_OUT
    before = scored([True] * 3 + [False] * (n - 3))  # three right before, six after: the first three both times
    after = scored([True] * 6 + [False] * (n - 6))
    differences = after.correct.astype(float) - before.correct.astype(float)
    paired = differences.std(ddof=1) / n ** 0.5
    unpaired = (before.correct.var(ddof=1) / n + after.correct.var(ddof=1) / n) ** 0.5
    assert abs(paired - unpaired) > 1e-3
    assert lesson05.check_own_adapter(before, after, unpaired, False, "unused", "offline") == FAILED
    assert "treats the two runs as independent samples" in capsys.readouterr().out
    assert lesson05.check_own_adapter(before, after, paired, True, "unused", "offline") == FAILED
    assert "is the gain larger?" in capsys.readouterr().out
    assert lesson05.check_own_adapter(before.head(5), after, paired, False, "unused", "offline") == FAILED
    assert "for the 48 held-out questions" in capsys.readouterr().out


def test_exercise_05_5_rescores_the_adapter_and_refuses_made_up_tables(offline_model, tmp_path, capsys):
    from peft import LoraConfig, get_peft_model

    adapter = get_peft_model(copy.deepcopy(offline_model[0]),
                             LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    adapter.save_pretrained(tmp_path / "adapter")
    n = lesson05.HELD_OUT
    perfect = scored([True] * n)  # consistent numbers, but not what these models score
    assert lesson05.check_own_adapter(perfect, perfect, 0.0, False, str(tmp_path / "adapter"), "offline") == FAILED
    assert "before scores 1.00, but the base model scores" in capsys.readouterr().out
