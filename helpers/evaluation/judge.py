"""LLM-as-judge: a pairwise judge prompt, position swapping, and the judge's own biases measured.

The judge reads the verdict off the model's next-token probabilities for "A" and "B" instead of
parsing free text, so a small model always gives a usable answer.
"""
import torch

RUBRIC = ("The better answer is correct (it agrees with the reference answer) and answers in the "
          "form the question asks for, without extra text.")
TEMPLATE = """You are a strict judge comparing two answers to the same question.
Rubric: {rubric}

Question: {question}
Reference answer: {reference}

Answer A: {a}
Answer B: {b}

Which answer is better according to the rubric? Reply with the single letter A or B."""


def prefer(model, tokenizer, question: str, a: str, b: str, reference: str = "(none)", rubric: str = RUBRIC) -> str:
    """'A' or 'B': the letter the judge model finds more likely as its reply."""
    for name, value in (("question", question), ("answer a", a), ("answer b", b)):
        if not str(value).strip():
            raise ValueError(f"the judge needs a non-empty {name}")
    prompt = TEMPLATE.format(rubric=rubric, question=question, reference=reference, a=a, b=b)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(model.device)
    with torch.no_grad():
        logits = model(**inputs, logits_to_keep=1).logits[0, -1]  # the next token's only: not the prompt's
    letter_a, letter_b = (tokenizer.encode(letter, add_special_tokens=False)[0] for letter in "AB")
    return "A" if logits[letter_a] >= logits[letter_b] else "B"


def compare(model, tokenizer, question: str, first: str, second: str, reference: str = "(none)",
            rubric: str = RUBRIC) -> dict:
    """Judge a pair twice, swapping the positions; a verdict counts only if it survives the swap."""
    as_shown = prefer(model, tokenizer, question, first, second, reference, rubric)
    swapped = prefer(model, tokenizer, question, second, first, reference, rubric)
    winner = {("A", "B"): "first", ("B", "A"): "second"}.get((as_shown, swapped), "inconsistent")
    return {"first shown as A": as_shown, "second shown as A": swapped, "winner": winner}


def position_bias(verdicts) -> float:
    """Share of pairs where the judge picked the same position both times (0: none, 1: always)."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("no verdicts to measure")
    return sum(v["winner"] == "inconsistent" for v in verdicts) / len(verdicts)
