"""Generating replies for held-out conversations and scoring them by exact match."""
import random
import re
import string

import torch

from ..cpu_decoding import fast_decoding


def prompt_of(conversation) -> list:
    """The conversation up to (not including) its last assistant reply: what the model is asked."""
    last = max(i for i, m in enumerate(conversation) if m["role"] == "assistant")
    return list(conversation[:last])


def question_of(conversation) -> str:
    """A short label for a held-out conversation in a table: its last question, without the instruction."""
    return prompt_of(conversation)[-1]["content"].split("\n\n", 1)[-1][:80]


SCORED_KINDS = ("yes/no", "multiple choice", "short answer")  # the held-out questions with one right answer


def held_out_rows(split, count: int | None = None, single_turn: bool = False) -> list:
    """The held-out conversations exact match can score (one right answer), in order: the first `count`,
    with `single_turn` only those of one user message and one reply."""
    rows = [row for row in split if row["kind"] in SCORED_KINDS and (not single_turn or len(row["messages"]) == 2)]
    return rows[:count]


LIGHTEVAL_SEED = 42  # LightEval shuffles a task's questions with this seed, then takes the first max_samples


def held_out_questions(split, count: int | None = None) -> list:
    """The held-out questions lessons 02, 03 and 05 score: of `held_out_rows`, the `count` that LightEval's
    `max_samples=count` picks for the course's held-out task, in its order. So a lesson's exact match
    and lesson 05's LightEval score measure the same questions (tests/evaluation/test_lighteval.py)."""
    rows = held_out_rows(split)
    order = list(range(len(rows)))
    random.Random(LIGHTEVAL_SEED).shuffle(order)
    return [rows[i] for i in order[:count or len(rows)]]


def chat_prompt(messages, tokenizer=None) -> str:
    """The text a chat model is given for `messages`, with the assistant's turn opened: the one prompt
    builder behind `generate_replies` (lessons 02-04) and lesson 05's held-out LightEval task.

    With a tokenizer, its own chat template; without one, the course's SmolLM2 (ChatML) template,
    which is the template of every profile's model (lesson 05 checks it against the model's own)."""
    if tokenizer is None:
        from ..templates import render
        return render(messages, "chatml", add_generation_prompt=True)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate_replies(model, tokenizer, prompts, max_new_tokens: int = 16, batch_size: int = 16) -> list:
    """Greedy replies to a list of prompts (each a list of messages), generated in batches."""
    texts = [chat_prompt(p, tokenizer) for p in prompts]
    return generate_completions(model, tokenizer, texts, max_new_tokens, batch_size)


def generate_completions(model, tokenizer, texts, max_new_tokens: int = 16, batch_size: int = 16) -> list:
    """Greedy continuations of plain texts (a prompt already in the model's format), generated in batches."""
    new_ids = _generate_ids(model, tokenizer, texts, max_new_tokens, batch_size)
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in new_ids]


def end_of_turn_replies(model, tokenizer, rows, max_new_tokens: int = 24, batch_size: int = 16):
    """A DataFrame of greedy replies to held-out rows and whether each stopped at the tokenizer's end of
    turn (its EOS token) within `max_new_tokens`: the sign that a model has learned to chat."""
    import pandas as pd

    texts = [chat_prompt(prompt_of(row["messages"]), tokenizer) for row in rows]
    new_ids = _generate_ids(model, tokenizer, texts, max_new_tokens, batch_size)
    return pd.DataFrame({
        "question": [question_of(row["messages"]) for row in rows],
        "reply": [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in new_ids],
        "stopped": [tokenizer.eos_token_id in ids.tolist() for ids in new_ids],
    })


def _generate_ids(model, tokenizer, texts, max_new_tokens: int, batch_size: int) -> list:
    """The new token ids of greedy continuations, one tensor per text, in the order given.

    The texts are batched shortest first, so each batch pads its prompts to a similar length
    (on a CPU the padding costs as much as real tokens).
    """
    from tqdm.auto import tqdm

    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # new tokens must follow the prompt
    was_training, new_ids = model.training, {}
    model.eval()
    try:
        with torch.no_grad(), fast_decoding(model):  # the layers switched once, not per batch
            for start in tqdm(range(0, len(order), batch_size), desc="generating", leave=False):
                batch = order[start:start + batch_size]
                inputs = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                                   add_special_tokens=False).to(model.device)
                output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id)
                new_ids.update(zip(batch, output[:, inputs["input_ids"].shape[1]:].cpu()))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return [new_ids[i] for i in range(len(texts))]


def normalize(text: str) -> str:
    """Lower case, no surrounding punctuation or extra spaces: 'Yes.' and 'yes' compare equal."""
    text = re.sub(r"\s+", " ", str(text).lower()).strip()
    return text.strip(string.punctuation + " ")


def exact_match(reply: str, references) -> bool:
    return normalize(reply) in {normalize(r) for r in references}


def score_held_out(model, tokenizer, rows, max_new_tokens: int = 16, batch_size: int = 16):
    """A DataFrame with one row per held-out conversation: task, expected answers, reply, correct."""
    import pandas as pd

    prompts = [prompt_of(row["messages"]) for row in rows]
    replies = generate_replies(model, tokenizer, prompts, max_new_tokens, batch_size)
    return pd.DataFrame({
        "task": [row["task"] for row in rows],
        "question": [question_of(row["messages"]) for row in rows],
        "expected": [row["references"][0] for row in rows],
        "reply": replies,
        "correct": [exact_match(reply, row["references"]) for reply, row in zip(replies, rows)],
    })
