"""Scoring generated answers: GSM8K's `#### N` numbers, and the standard error of a mean score."""
import math
import re

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_number(text: str):
    """The answer number of a solution: the one after '####' if there is one, else the last number.

    Commas and a trailing '.0' are dropped, so '1,000', '1000' and '1000.0' compare equal.
    Returns None when the text holds no number.
    """
    text = str(text)
    tail = text.split("####")[-1] if "####" in text else text
    numbers = NUMBER.findall(tail)
    if not numbers:
        return None
    number = numbers[0] if "####" in text else numbers[-1]
    number = number.replace(",", "")
    return number[:-2] if number.endswith(".0") else number


def gsm8k_correct(reply: str, reference: str) -> bool:
    """Does the reply's final number equal the reference solution's `#### N`?"""
    expected = final_number(reference)
    if expected is None:
        raise ValueError(f"the reference has no number to compare with: {reference[-80:]!r}")
    return final_number(reply) == expected


def standard_error(scores) -> float:
    """Standard error of the mean of per-question scores (sample standard deviation / sqrt(n))."""
    scores = [float(s) for s in scores]
    if len(scores) < 2:
        raise ValueError("a standard error needs at least two scores")
    mean = sum(scores) / len(scores)
    return math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) / math.sqrt(len(scores))
