"""Exercise notebooks: generated from the solutions, untouched ones run with every check "not done", and a
solution whose check fails fails under nbval."""
import pytest

from helpers.course.runner import COURSE_ROOT, run_notebook
from helpers.exercises.checks import NOT_DONE, read_checks
from helpers.course.make_exercises import exercise_notebook, exercise_path, strip_solutions

SOLUTIONS = sorted((COURSE_ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_exercises_are_exactly_the_solutions_without_the_answers(solution):
    generated = [c.source for c in exercise_notebook(solution).cells]
    committed = [c.source for c in exercise_notebook(exercise_path(solution)).cells]
    assert generated == committed, "exercises/ drifted: run `python -m helpers exercises`"
    assert "BEGIN SOLUTION" not in "".join(committed)


@pytest.mark.slow  # executes notebooks or a real model
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_untouched_exercises_run_and_every_check_says_not_done(solution, tmp_path):
    # The solutions themselves run under nbval, where conftest.py fails any check that does not pass.
    row = run_notebook(exercise_path(solution), tmp_path / "exercises.ipynb", {"profile": "cpu"})
    assert row["status"] == "ok", row["error"]
    results = read_checks(tmp_path / "exercises.ipynb")
    assert len(results) >= 4 and {r["status"] for r in results} == {NOT_DONE}, results


def test_a_solution_check_that_does_not_pass_fails_under_nbval(pytester, make_notebook):
    """The hook in conftest.py, on a 'solution' whose second check fails; the third is skipped on this machine
    (as a 4-bit check is where 4-bit cannot run), which says why and is no failure."""
    folder = pytester.mkdir("solutions")
    make_notebook(folder / "toy.ipynb",
                  "from helpers.exercises.checks import exercise_check, Hint, Skip\n"
                  "@exercise_check('Exercise 1')\n"
                  "def check(answer):\n"
                  "    if answer is None:\n"
                  "        raise Skip('no 4-bit kernels here')\n"
                  "    if answer != 42:\n"
                  "        raise Hint('the answer is 42')\n"
                  "check(42)", "check(41)", "check(None)", parameters=None)
    pytester.makeconftest((COURSE_ROOT / "conftest.py").read_text())
    result = pytester.runpytest_subprocess("--nbval-lax", "-p", "no:cacheprovider", str(folder / "toy.ipynb"))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*Exercise 1: failed: the answer is 42*"])


def test_strip_solutions_keeps_the_placeholder_and_refuses_broken_markers():
    source = "x = 1\n    # BEGIN SOLUTION -> answer = ...\n    answer = 42\n    # END SOLUTION\nprint(x)"
    assert strip_solutions(source) == "x = 1\n    answer = ...  # TODO: your answer\nprint(x)"
    with pytest.raises(ValueError, match="never closed"):
        strip_solutions("# BEGIN SOLUTION -> a = ...\na = 1")
    with pytest.raises(ValueError, match="without BEGIN"):
        strip_solutions("a = 1\n# END SOLUTION")


def test_no_function_a_learner_imports_returns_an_exercises_answer():
    # Each exercise module offers its checks and the data the exercises read, nothing that computes an
    # answer: the checks compute their references at check time. adapter_model is exercise 04-4's reference
    # model and 04-2's answer; check_loaded refuses it while the learner's function runs (test_lesson04.py).
    import inspect

    from helpers.exercises import lesson01, lesson02, lesson03, lesson04, lesson05

    offered = {module.__name__.rsplit(".", 1)[-1]: {name for name, value in vars(module).items()
                                                     if inspect.isfunction(value) and value.__module__ == module.__name__
                                                     and not name.startswith(("_", "check_"))}
               for module in (lesson01, lesson02, lesson03, lesson04, lesson05)}
    assert offered == {"lesson01": set(),
                       "lesson02": {"alpaca_rows", "alpaca_dataset", "conversation_lengths", "mask_conversations"},
                       "lesson03": set(), "lesson04": {"held_out_prompts", "adapter_model", "merge_into_4bit"},
                       "lesson05": {"mmlu_data", "held_out_questions", "your_adapter"}}


def test_worked_answers_in_markdown_become_a_place_for_the_learners_own():
    from helpers.course.make_exercises import strip_markdown_solutions

    source = "**1. Why?**\n\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->\n\n**2. And?**"
    assert strip_markdown_solutions(source) == "**1. Why?**\n\n*Your answer:*\n\n**2. And?**"
    with pytest.raises(ValueError, match="never closed"):
        strip_markdown_solutions("<!-- BEGIN SOLUTION -->\nBecause.")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_every_exercise_set_ends_with_why_questions_answered_in_the_solution(solution):
    import nbformat

    last = nbformat.read(solution, as_version=4).cells[-1]
    handed_out = exercise_notebook(solution).cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Why?")
    assert last.source.count("<!-- BEGIN SOLUTION -->") >= 4
    assert handed_out.source.count("*Your answer:*") == last.source.count("<!-- BEGIN SOLUTION -->")
    assert "<!--" not in handed_out.source


def test_the_training_exercises_prose_states_their_budgets():
    """The numbers the training exercises' Markdown states are the ones their checks hold a learner to."""
    import nbformat

    from helpers.exercises import lesson02, lesson03, lesson05

    def cell(name, cell_id):
        notebook = nbformat.read(COURSE_ROOT / "solutions" / name, as_version=4)
        return next(c.source for c in notebook.cells if c.get("id") == cell_id)

    assert f"({lesson02.STEP_BUDGET} training steps, then {lesson02.HELD_OUT} short replies)" in \
        cell("02_supervised_fine_tuning_exercises.ipynb", "ex6-intro")
    assert f"({lesson03.LORA_STEPS} training steps, then {lesson03.HELD_OUT} short replies)" in \
        cell("03_lora_and_qlora_exercises.ipynb", "ex6-intro")
    assert lesson03.ADAPTER_RUN in cell("03_lora_and_qlora_exercises.ipynb", "ex6-intro")
    assert f"two rounds of {lesson05.HELD_OUT} short replies" in cell("05_evaluation_exercises.ipynb", "ex5-intro")
