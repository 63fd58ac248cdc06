import re

import pytest

from helpers.evaluation import evalsets


def test_mmlu_anatomy_is_the_real_subject():
    anatomy = evalsets.load_mmlu("anatomy")
    assert len(anatomy) == 135
    row = anatomy[0]
    assert row["subject"] == "anatomy" and len(row["choices"]) == 4 and row["answer"] in range(4)
    assert len(evalsets.load_mmlu("anatomy", "dev")) == 5  # the five few-shot examples
    assert len(evalsets.mmlu_subjects()) == 57


def test_unknown_mmlu_subject_lists_the_subjects():
    with pytest.raises(ValueError, match="Available:.*high_school_biology"):
        evalsets.load_mmlu("anatomyy")
    with pytest.raises(ValueError, match="split"):
        evalsets.load_mmlu("anatomy", "train")


def test_gsm8k_answers_end_with_the_number():
    problems = evalsets.load_gsm8k()
    assert len(problems) == 1319
    for problem in problems:
        final = re.search(r"####\s*(.+)$", problem["answer"]).group(1).strip()
        assert final.replace(",", "") == problem["short_answer"].replace(",", "")


def test_humaneval_has_164_problems_with_tests():
    problems = evalsets.load_humaneval()
    assert len(problems) == 164
    assert all(f"def {p['entry_point']}" in p["prompt"] and "def check" in p["test"] for p in problems)


def test_arc_challenge_questions():
    arc = evalsets.load_arc("ARC-Challenge")
    assert len(arc) > 250 and set(arc[0]) >= {"question", "choices", "answerKey"}
