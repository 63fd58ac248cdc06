"""GSM8K scoring, standard errors, sandboxed code execution and the pairwise judge."""
from unittest import mock

import pytest
import torch

from helpers.evaluation import code_exec, evalsets, judge, scoring


@pytest.mark.parametrize("text, number", [
    ("She pays 18 dollars.\n#### 1,018", "1018"), ("So 3 + 4 = 7. The answer is 7.", "7"),
    ("#### 5.0", "5"), ("-3 degrees", "-3"), ("no digits here", None), ("#### 12 apples, not 13", "12"),
])
def test_final_number(text, number):
    assert scoring.final_number(text) == number


def test_gsm8k_references_match_their_own_answers():
    problems = evalsets.load_gsm8k()[:50]
    assert all(scoring.gsm8k_correct(p["answer"], p["answer"]) for p in problems)
    assert all(scoring.final_number(p["answer"]) == p["short_answer"].replace(",", "") for p in problems)
    assert not scoring.gsm8k_correct("The answer is 1.", problems[0]["answer"])
    with pytest.raises(ValueError, match="no number"):
        scoring.gsm8k_correct("7", "no answer here")


def test_standard_error_matches_lighteval():
    from lighteval.metrics.utils.stderr import mean_stderr

    scores = [1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1]
    assert scoring.standard_error(scores) == pytest.approx(mean_stderr(scores))
    assert scoring.standard_error([1] * 5 + [0] * 5) == pytest.approx(0.1667, abs=1e-4)
    with pytest.raises(ValueError, match="at least two"):
        scoring.standard_error([1])


def test_humaneval_canonical_solutions_pass_and_wrong_ones_fail():
    problems = evalsets.load_humaneval()[:3]
    for problem in problems:
        assert code_exec.humaneval_outcome(problem, problem["canonical_solution"]).passed
    outcome = code_exec.humaneval_outcome(problems[0], "    return True\n")
    assert not outcome.passed and "AssertionError" in outcome.reason


def test_generated_code_runs_in_a_subprocess_with_a_time_limit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert code_exec.run_python("while True: pass", timeout=1).reason == "timed out after 1 s"
    assert code_exec.run_python("open('written.txt', 'w').write('x')").passed
    assert not (tmp_path / "written.txt").exists(), "the program must run in its own temporary folder"
    assert code_exec.run_python("import sys; sys.exit(3)").reason == "failed: exit status 3"


def test_a_whole_function_in_a_code_fence_is_used_as_is():
    problem = evalsets.load_humaneval()[0]
    reply = "Here it is:\n```python\ndef has_close_elements(numbers, threshold):\n    return False\n```\nDone."
    code = code_exec.completion_code(problem, reply)
    assert code.strip().endswith("return False") and "from typing import List" in code


def test_the_judge_reading_one_positions_logits_picks_the_letter_a_full_forward_picks(offline_model):
    from helpers.exercises.lesson05 import JUDGE_PAIRS

    model, tokenizer = offline_model
    letter_a, letter_b = (tokenizer.encode(letter, add_special_tokens=False)[0] for letter in "AB")
    for question, reference, right, wrong in JUDGE_PAIRS:
        for a, b in ((right, wrong), (wrong, right)):
            prompt = judge.TEMPLATE.format(rubric=judge.RUBRIC, question=question, reference=reference, a=a, b=b)
            inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                   return_tensors="pt", return_dict=True)
            with torch.no_grad():
                logits = model(**inputs).logits[0, -1]  # every position, each layer's own product
            with mock.patch.object(type(model), "forward", autospec=True, side_effect=type(model).forward) as forward:
                verdict = judge.prefer(model, tokenizer, question, a, b, reference)
            assert forward.call_args.kwargs["logits_to_keep"] == 1
            assert verdict == ("A" if logits[letter_a] >= logits[letter_b] else "B")


def test_the_judge_cannot_prefer_one_of_two_identical_answers(offline_model):
    model, tokenizer = offline_model
    verdict = judge.compare(model, tokenizer, "What is 2 + 2?", "4", "4", reference="4")
    assert verdict["winner"] == "inconsistent"  # same prompt both ways: same letter both times
    verdicts = [verdict, {"winner": "first"}, {"winner": "second"}, {"winner": "first"}]
    assert judge.position_bias(verdicts) == 0.25
    with pytest.raises(ValueError, match="non-empty answer b"):
        judge.prefer(model, tokenizer, "What is 2 + 2?", "4", " ")
