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
def test_untouched_exercises_run_and_every_check_says_not_done(solution, tmp_path):
    # The solutions themselves run under nbval, where conftest.py fails any check that does not pass.
    row = run_notebook(exercise_path(solution), tmp_path / "exercises.ipynb", {"profile": "cpu"})
    assert row["status"] == "ok", row["error"]
    results = read_checks(tmp_path / "exercises.ipynb")
    assert len(results) >= 4 and {r["status"] for r in results} == {NOT_DONE}, results


def test_a_solution_check_that_does_not_pass_fails_under_nbval(pytester):
    """The hook in conftest.py, on a two-cell 'solution' whose second check fails."""
    import nbformat

    folder = pytester.mkdir("solutions")
    cells = [nbformat.v4.new_code_cell(
        "from helpers.checks import exercise_check, Hint\n"
        "@exercise_check('Exercise 1')\n"
        "def check(answer):\n"
        "    if answer != 42:\n"
        "        raise Hint('the answer is 42')\n"
        "check(42)"), nbformat.v4.new_code_cell("check(41)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3",
                   "display_name": "Python 3", "language": "python"}}), folder / "toy.ipynb")
    pytester.makeconftest((COURSE_ROOT / "conftest.py").read_text())
    result = pytester.runpytest_subprocess("--nbval-lax", "-p", "no:cacheprovider", str(folder / "toy.ipynb"))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Exercise 1: failed: the answer is 42*"])


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


def test_lesson03_hints_name_what_is_wrong(offline_model, capsys):
    from peft import LoraConfig

    from helpers import lesson03

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
    from helpers import lesson03

    model = offline_model[0]
    everything = sum(p.numel() for p in model.parameters())
    assert lesson03.check_four_bit_estimate(everything // 2, model, helpers.model_path("offline")) == FAILED
    assert "106,168,320 weights sit in quantized linear layers" in capsys.readouterr().out


def test_lesson04_hints(offline_model, tmp_path, capsys):
    import torch
    from peft import LoraConfig, get_peft_model

    from helpers import lesson04

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


def test_lesson04_style_hints_say_how_to_switch(capsys):
    from helpers import lesson04

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


def test_lesson05_hints(offline_model, capsys):
    from helpers import judge, lesson05, scoring

    assert lesson05.check_gsm8k_match(lambda reply, reference: reply.split()[-1] == reference.split()[-1]) == FAILED
    assert "take the number after '####'" in capsys.readouterr().out
    assert lesson05.check_gsm8k_match(lambda r, ref: scoring.final_number(r) == scoring.final_number(ref)) == PASSED
    population = lambda scores: (sum((s - sum(scores) / len(scores)) ** 2 for s in scores) / len(scores)) ** 0.5 / len(scores) ** 0.5  # noqa: E731
    assert lesson05.check_standard_error(population, 102) == FAILED
    assert "n - 1 in its denominator" in capsys.readouterr().out
    assert lesson05.check_standard_error(scoring.standard_error, 100) == FAILED
    assert "with 100 questions at accuracy 0.5 the standard error is 0.0503" in capsys.readouterr().out
    assert lesson05.check_position_bias("short", 0.0, *offline_model) == FAILED
    assert "at least one sentence" in capsys.readouterr().out
    rubric = judge.RUBRIC
    verdicts = [judge.compare(*offline_model, q, right, wrong, reference=ref, rubric=rubric)
                for q, ref, right, wrong in lesson05.JUDGE_PAIRS]
    assert lesson05.check_position_bias(rubric, judge.position_bias(verdicts) + 0.5, *offline_model) == FAILED
    assert "picked the same position" in capsys.readouterr().out


def test_lesson05_task_check_names_the_subset(offline_model, capsys):
    from lighteval.metrics.metrics import Metrics
    from lighteval.tasks.lighteval_task import LightevalTaskConfig

    import helpers
    from helpers import lesson05, lighteval_tasks

    folder = lesson05.mmlu_data("college_biology")
    config = LightevalTaskConfig(name="t:college_biology", prompt_function=lighteval_tasks.mmlu_prompt,
                                 hf_repo=folder, hf_subset="anatomy", evaluation_splits=["test"],
                                 metrics=[Metrics.loglikelihood_acc])
    assert lesson05.check_mmlu_task(config, "college_biology", helpers.model_path("offline")) == FAILED
    assert "hf_subset is 'anatomy'" in capsys.readouterr().out
