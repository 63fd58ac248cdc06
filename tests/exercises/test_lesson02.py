"""Lesson 02 (supervised fine-tuning) exercise checks: right answers pass, wrong ones get hints that name the fix."""

from helpers.exercises import lesson02
from helpers.exercises.checks import FAILED, PASSED


def test_lesson02_formatting_func_hint_names_the_empty_input_row(capsys):

    def always_input(example):
        return (f"### Instruction:\n{example['instruction']}\n\n### Input:\n{example['input']}\n\n"
                f"### Response:\n{example['output']}")

    assert lesson02.check_formatting_func(always_input) == FAILED
    assert "its input is empty" in capsys.readouterr().out


def test_lesson02_max_length_hints_point_both_ways(offline_model, capsys):

    tokenizer = offline_model[1]
    assert lesson02.check_max_length(64, tokenizer) == FAILED
    assert "truncates" in capsys.readouterr().out
    assert lesson02.check_max_length(4096, tokenizer) == FAILED
    assert "more than twice" in capsys.readouterr().out
    assert lesson02.check_max_length(256, tokenizer) == PASSED


def test_lesson02_diagnoses_hints(capsys):

    assert lesson02.check_diagnoses({"A": "overfitting", "B": "converged", "C": "converged"}) == FAILED
    assert "run B is not converged" in capsys.readouterr().out
    assert lesson02.check_diagnoses({"A": "bad", "B": "x", "C": "y"}) == FAILED
    assert "is not one of" in capsys.readouterr().out


def test_lesson02_assistant_only_check_reads_the_real_labels(offline_model, tmp_path, capsys):
    from trl import SFTConfig, SFTTrainer

    import helpers
    from helpers import templates

    model, tokenizer = offline_model
    model = __import__("copy").deepcopy(model)  # a trainer sets checkpointing on its model: keep the shared one clean
    eight = helpers.load_chat_dataset()["train"].select(range(8))
    all_tokens = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=eight,
                            args=SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True))
    assert lesson02.check_assistant_only(all_tokens, 1.0) == FAILED
    assert "does not set assistant_only_loss=True" in capsys.readouterr().out
    template, tokenizer.chat_template = tokenizer.chat_template, templates.training_template()
    try:
        masked = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=eight,
                            args=SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True,
                                           assistant_only_loss=True))
        share = lesson02.trained_share(masked)
        assert 0 < share < 0.5
        assert lesson02.check_assistant_only(masked, 1.0) == FAILED
        assert lesson02.check_assistant_only(masked, share) == PASSED
    finally:
        tokenizer.chat_template = template
