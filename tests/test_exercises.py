"""Exercises are generated from solutions, solutions pass every check, and wrong answers get hints."""
import pytest

from helpers import lesson01
from helpers.batch import COURSE_ROOT, run_notebook
from helpers.checks import FAILED, NOT_DONE, PASSED, read_checks
from helpers.exercises import exercise_notebook, exercise_path, strip_solutions

SOLUTIONS = sorted((COURSE_ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_exercises_are_exactly_the_solutions_without_the_answers(solution):
    generated = [c.source for c in exercise_notebook(solution).cells]
    committed = [c.source for c in exercise_notebook(exercise_path(solution)).cells]
    assert generated == committed, "exercises/ drifted: run `python -m helpers exercises`"
    assert "BEGIN SOLUTION" not in "".join(committed)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_pass_and_untouched_exercises_say_not_done(solution, tmp_path):
    for notebook, expected in ((solution, PASSED), (exercise_path(solution), NOT_DONE)):
        row = run_notebook(notebook, tmp_path / f"{expected}.ipynb", {"profile": "cpu"})
        assert row["status"] == "ok", row["error"]
        results = read_checks(tmp_path / f"{expected}.ipynb")
        assert len(results) >= 4 and {r["status"] for r in results} == {expected}, results


def test_strip_solutions_keeps_the_placeholder_and_refuses_broken_markers():
    source = "x = 1\n    # BEGIN SOLUTION -> answer = ...\n    answer = 42\n    # END SOLUTION\nprint(x)"
    assert strip_solutions(source) == "x = 1\n    answer = ...  # TODO: your answer\nprint(x)"
    with pytest.raises(ValueError, match="never closed"):
        strip_solutions("# BEGIN SOLUTION -> a = ...\na = 1")
    with pytest.raises(ValueError, match="without BEGIN"):
        strip_solutions("a = 1\n# END SOLUTION")


@pytest.mark.parametrize("answer, hint", [
    ([{"role": "user", "content": "Where is the treasure?"}], "ends with a user message"),
    ([{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Where is the treasure?"},
      {"role": "assistant", "content": "Under the palm tree."}], "differs at character"),
    ("<|im_start|>system...", "expected a list"),
])
def test_exercise_1_wrong_answers_get_specific_hints(answer, hint, capsys):
    assert lesson01.check_pirate_messages(answer) == FAILED
    assert hint in capsys.readouterr().out


def test_exercise_2_refuses_a_fix_that_deletes_text(capsys):
    deleted = [m if m["role"] != "human" else {**m, "role": "user"} for m in lesson01.BROKEN]
    del deleted[4]
    assert lesson01.check_fixed_conversation(deleted) == FAILED
    assert "lost some of the learner's text: ['Not red.']" in capsys.readouterr().out


def test_exercise_3_reports_the_failing_case(capsys):
    no_prompt = "{% for m in messages %}{{ '### ' + m['role'] | capitalize + ':\\n' + m['content'] + '\\n\\n' }}{% endfor %}"
    assert lesson01.check_header_template(no_prompt) == FAILED
    assert "case 3 (add_generation_prompt=True)" in capsys.readouterr().out
    assert lesson01.check_header_template("{% for m in messages %}{{ m.content }") == FAILED
    assert "case 1" in capsys.readouterr().out


def test_exercise_4_hints_at_the_closing_token(offline_model, capsys):
    tokenizer = offline_model[1]
    expected = lesson01.trained_token_count(tokenizer)
    assert expected == 7  # "Chat." and "Chien." plus two <|im_end|>
    assert lesson01.check_trained_tokens(expected - 2, tokenizer) == FAILED
    assert "closing <|im_end|> is trained too" in capsys.readouterr().out
    assert lesson01.check_trained_tokens(expected, tokenizer) == PASSED


def test_lesson02_formatting_func_hint_names_the_empty_input_row(capsys):
    from helpers import lesson02

    def always_input(example):
        return (f"### Instruction:\n{example['instruction']}\n\n### Input:\n{example['input']}\n\n"
                f"### Response:\n{example['output']}")

    assert lesson02.check_formatting_func(always_input) == FAILED
    assert "its input is empty" in capsys.readouterr().out


def test_lesson02_max_length_hints_point_both_ways(offline_model, capsys):
    from helpers import lesson02

    tokenizer = offline_model[1]
    assert lesson02.check_max_length(64, tokenizer) == FAILED
    assert "truncates" in capsys.readouterr().out
    assert lesson02.check_max_length(4096, tokenizer) == FAILED
    assert "more than twice" in capsys.readouterr().out
    assert lesson02.check_max_length(256, tokenizer) == PASSED


def test_lesson02_diagnoses_hints(capsys):
    from helpers import lesson02

    assert lesson02.check_diagnoses({"A": "overfitting", "B": "converged", "C": "converged"}) == FAILED
    assert "run B is not converged" in capsys.readouterr().out
    assert lesson02.check_diagnoses({"A": "bad", "B": "x", "C": "y"}) == FAILED
    assert "is not one of" in capsys.readouterr().out


def test_lesson02_assistant_only_check_reads_the_real_labels(offline_model, tmp_path, capsys):
    from trl import SFTConfig, SFTTrainer

    import helpers
    from helpers import lesson02, templates

    model, tokenizer = offline_model
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
