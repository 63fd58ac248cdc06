"""Lesson 05 (evaluation) exercise checks: right answers pass, wrong ones get hints that name the fix."""

from helpers.exercises import lesson05
from helpers.exercises.checks import FAILED, PASSED


def test_lesson05_hints(offline_model, capsys):
    from helpers.evaluation import judge, scoring

    assert lesson05.check_gsm8k_match(lambda reply, reference: reply.split()[-1] == reference.split()[-1]) == FAILED
    assert "take the number after '####'" in capsys.readouterr().out
    assert lesson05.check_gsm8k_match(lambda r, ref: scoring.final_number(r) == scoring.final_number(ref)) == FAILED
    assert "scoring already scores GSM8K: write the matching yourself" in capsys.readouterr().out
    population = lambda scores: (sum((s - sum(scores) / len(scores)) ** 2 for s in scores) / len(scores)) ** 0.5 / len(scores) ** 0.5  # noqa: E731
    assert lesson05.check_standard_error(population, 102) == FAILED
    assert "n - 1 in its denominator" in capsys.readouterr().out
    by_hand = lambda scores: (sum((s - sum(scores) / len(scores)) ** 2 for s in scores) / (len(scores) - 1)) ** 0.5 / len(scores) ** 0.5  # noqa: E731
    assert lesson05.check_standard_error(by_hand, 100) == FAILED
    assert "with 100 questions at accuracy 0.5 the standard error is 0.0503" in capsys.readouterr().out
    for shortcut in (scoring.standard_error, lambda scores: scoring.standard_error(scores)):
        assert lesson05.check_standard_error(shortcut, 102) == FAILED
        assert "write it by hand from the scores" in capsys.readouterr().out
    assert scoring.standard_error([1, 0, 1]) > 0  # put back after the check
    assert lesson05.check_position_bias("short", 0.0, *offline_model) == FAILED
    assert "at least one sentence" in capsys.readouterr().out
    rubric = judge.RUBRIC
    verdicts = [judge.compare(*offline_model, q, right, wrong, reference=ref, rubric=rubric)
                for q, ref, right, wrong in lesson05.JUDGE_PAIRS]
    assert lesson05.check_position_bias(rubric, judge.position_bias(verdicts) + 0.5, *offline_model) == FAILED
    assert "picked the same position" in capsys.readouterr().out
    assert lesson05.check_position_bias("one two three four five six seven eight", 0.0, *offline_model) == FAILED
    assert "ask the judge to compare each answer with the reference answer" in capsys.readouterr().out


def test_lesson05_task_check_names_the_subset(offline_model, capsys):
    from lighteval.metrics.metrics import Metrics
    from lighteval.tasks.lighteval_task import LightevalTaskConfig

    import helpers
    from helpers.evaluation import lighteval_tasks

    folder = lesson05.mmlu_data("college_biology")
    config = LightevalTaskConfig(name="t:college_biology", prompt_function=lighteval_tasks.mmlu_prompt,
                                 hf_repo=folder, hf_subset="anatomy", evaluation_splits=["test"],
                                 metrics=[Metrics.loglikelihood_acc])
    assert lesson05.check_mmlu_task(config, "college_biology", helpers.model_path("offline")) == FAILED
    assert "hf_subset is 'anatomy'" in capsys.readouterr().out
