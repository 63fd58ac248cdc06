"""The exercises of lesson 02 (supervised fine-tuning): their data and their self-checks."""
import math

from . import trainer_checks
from .checks import Hint, exercise_check
from ..data import load_chat_dataset
from ..training import diagnose

PATTERNS = ("sharp drop", "stabilising", "converged", "underfitting", "overfitting", "memorisation", "diverging")


def alpaca_rows(count: int = 6) -> list:
    """Single-turn conversations of the course's set as instruction/input/output rows (Alpaca style)."""
    rows = []
    for row in load_chat_dataset("offline")["train"]:
        if len(row["messages"]) == 2:
            rows.append(_as_alpaca(row["messages"]))
        if len(rows) == count - 1:
            break
    rows.append({"instruction": "Name a primary colour.", "input": "", "output": "Red."})  # no input
    return rows


def alpaca_dataset():
    """Exercise 6's training data: the course's single-turn conversations with one right answer
    (yes/no, multiple choice, short answer) as Alpaca rows, in a `datasets.Dataset`."""
    from datasets import Dataset

    from ..evaluation import held_out_rows

    rows = held_out_rows(load_chat_dataset("offline")["train"], single_turn=True)
    return Dataset.from_list([_as_alpaca(row["messages"]) for row in rows])


def _as_alpaca(messages) -> dict:
    """A user message (and its reply, if given) as an Alpaca row: the instruction, then the input after a blank line."""
    instruction, _, given = messages[0]["content"].partition("\n\n")
    return {"instruction": instruction, "input": given, "output": messages[1]["content"] if len(messages) > 1 else ""}


def _formatting_problem(formatting_func) -> str | None:
    # the expected text is built here, at check time: no function a learner can import returns it
    for number, row in enumerate(alpaca_rows(), 1):
        sections = [("Instruction", row["instruction"]), ("Input", row["input"]), ("Response", row["output"])]
        expected = "\n\n".join(f"### {name}:\n{text}" for name, text in sections if text or name != "Input")
        got = formatting_func(row)
        if not isinstance(got, str):
            return f"formatting_func must return one string per example, got {type(got).__name__}"
        if got != expected:
            empty = " (its input is empty: leave the Input section out)" if not row["input"] else ""
            return f"row {number}{empty}: expected\n{expected!r}\ngot\n{got!r}"
    return None


@exercise_check("Exercise 1 (formatting_func)")
def check_formatting_func(formatting_func):
    problem = _formatting_problem(formatting_func)
    if problem:
        raise Hint(problem)
    return "correct: every row is formatted exactly"


STEP_BUDGET, BATCH_BUDGET = 16, 4  # exercise 6 trains at most 16 steps of 4 conversations
HELD_OUT = 48                      # the held-out questions it scores
TARGET = 0.20                      # the exact match it asks for on them


@exercise_check("Exercise 6 (train with your formatting_func)")
def check_formatting_training(make_sft_trainer, formatting_func, model_source):
    from ..evaluation import exact_match, generate_completions, held_out_rows
    from ..models import load_model

    problem = _formatting_problem(formatting_func)
    if problem:
        raise Hint(f"exercise 1's formatting_func is not right yet: {problem}")
    model, tokenizer = load_model(model_source)  # a fresh model: the check trains it from its own weights
    data = alpaca_dataset()
    trainer = trainer_checks.built_trainer(make_sft_trainer, model, tokenizer, data, STEP_BUDGET, BATCH_BUDGET)
    held_out = held_out_rows(load_chat_dataset("offline")["test"], HELD_OUT, single_turn=True)
    trainer_checks.trained_on_none_of(trainer, tokenizer, held_out)
    first = tokenizer.decode(trainer.train_dataset[0]["input_ids"])
    if not first.startswith(formatting_func(data[0])):
        raise Hint(f"the trainer's first example reads {first[:60]!r}..., not your formatting_func's text: "
                   "pass formatting_func=formatting_func to SFTTrainer")
    trained = trainer_checks.train(trainer)
    prompts = [formatting_func(_as_alpaca(row["messages"][:1])) for row in held_out]  # ends at "### Response:\n"
    replies = generate_completions(trainer.model, tokenizer, prompts)
    right = sum(exact_match(reply.split("\n")[0], row["references"]) for reply, row in zip(replies, held_out))
    score, steps = right / len(held_out), trainer.state.global_step
    if score < TARGET:
        raise Hint(f"after {steps} steps exact match is {score:.2f} on {len(held_out)} held-out questions, under "
                   f"{TARGET:.2f}: use the whole budget ({STEP_BUDGET} steps of {BATCH_BUDGET}) and the learning "
                   "rate lesson 02 fine-tunes with")
    return (f"correct: {trained}; exact match {score:.2f} on {len(held_out)} held-out questions in your format "
            f"(target {TARGET:.2f})")


def conversation_lengths(tokenizer) -> list:
    """The token length of each training conversation under the tokenizer's chat template."""
    return [len(tokenizer.apply_chat_template(m, return_dict=False))
            for m in load_chat_dataset("offline")["train"]["messages"]]


@exercise_check("Exercise 2 (choose max_length)")
def check_max_length(max_length, tokenizer):
    lengths = sorted(conversation_lengths(tokenizer))
    p99 = lengths[math.ceil(0.99 * len(lengths)) - 1]
    if not isinstance(max_length, int) or max_length <= 0:
        raise Hint(f"max_length must be a positive whole number of tokens, got {max_length!r}")
    truncated = sum(n > max_length for n in lengths) / len(lengths)
    if truncated > 0.01:
        raise Hint(f"max_length={max_length} truncates {truncated:.1%} of the conversations; "
                   "look at the 99th percentile of the lengths")
    if max_length > 2 * p99:
        raise Hint(f"max_length={max_length} is more than twice what 99% of conversations need: "
                   "every padded token costs compute")
    return f"correct: {1 - truncated:.1%} of conversations fit (99th percentile: {p99} tokens)"


STEPS = range(24)
CURVES = {  # (train losses, eval losses) of three runs
    "A": ([2.5 * math.exp(-s / 4) + 0.3 for s in STEPS], [1.6, 1.2, 1.15, 1.25, 1.4, 1.6]),
    "B": ([2.6 - 0.003 * s + 0.05 * math.sin(s) for s in STEPS], [2.55, 2.55, 2.54, 2.54, 2.54, 2.53]),
    "C": ([1.0 + 1.8 * math.exp(-s / 2) for s in STEPS], [1.9, 1.3, 1.2, 1.18, 1.18, 1.17]),
}


@exercise_check("Exercise 3 (diagnose the curves)")
def check_diagnoses(diagnoses):
    if not isinstance(diagnoses, dict) or set(diagnoses) != set(CURVES):
        raise Hint(f"give a dict with one pattern for each run: {sorted(CURVES)}")
    for run, (train, evals) in CURVES.items():
        answer = str(diagnoses[run]).strip().lower()
        if answer not in PATTERNS:
            raise Hint(f"run {run}: {answer!r} is not one of {', '.join(PATTERNS)}")
        expected = diagnose(train, evals)
        if answer != expected.pattern:
            raise Hint(f"run {run} is not {answer}: compare where its train and eval curves start and end")
    return "correct: " + "; ".join(f"{run} is {diagnose(*c).pattern}" for run, c in CURVES.items())


@exercise_check("Exercise 4 (assistant-only loss)")
def check_assistant_only(trainer, share):
    if not trainer.args.assistant_only_loss:
        raise Hint("the trainer's SFTConfig does not set assistant_only_loss=True")
    batch = next(iter(trainer.get_train_dataloader()))  # the reference share, computed at check time
    real = batch["attention_mask"].bool()
    actual = float((batch["labels"][real] != -100).float().mean())
    if abs(float(share) - actual) > 1e-6:
        raise Hint(f"your share {share:.3f} does not match the first batch's labels ({actual:.3f}): count labels "
                   "that are not -100, among the positions where attention_mask is 1")
    if actual > 0.9:
        raise Hint("almost every token is trained: the mask is not assistant-only")
    return f"correct: only {actual:.0%} of the tokens, the assistant replies, carry a loss"


def mask_conversations() -> list:
    """Three training conversations for exercise 5: one turn, a system message, two turns."""
    rows = load_chat_dataset("offline")["train"]["messages"]
    return [next(m for m in rows if len(m) == 2 and m[0]["role"] == "user"),
            next(m for m in rows if m[0]["role"] == "system"),
            next(m for m in rows if sum(x["role"] == "assistant" for x in m) == 2)]


class _WithoutTheShortcut:
    """The tokenizer, except that it will not compute the assistant mask for the learner."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)

    def apply_chat_template(self, *args, **kwargs):
        if kwargs.get("return_assistant_tokens_mask"):
            raise Hint("build the mask from the token ids yourself; return_assistant_tokens_mask is what the "
                       "check compares with")
        return self._tokenizer.apply_chat_template(*args, **kwargs)


@exercise_check("Exercise 5 (build the assistant mask)")
def check_assistant_mask(assistant_mask, tokenizer):
    from ..templates import training_template

    for number, messages in enumerate(mask_conversations(), 1):
        reference = tokenizer.apply_chat_template(messages, chat_template=training_template(), return_dict=True,
                                                  return_assistant_tokens_mask=True)  # what TRL trains on
        ids, expected = list(reference["input_ids"]), [int(m) for m in reference["assistant_masks"]]
        got = [int(bool(m)) for m in assistant_mask(list(ids), _WithoutTheShortcut(tokenizer))]
        if len(got) != len(ids):
            raise Hint(f"conversation {number}: {len(got)} mask values for {len(ids)} tokens; give one per token")
        wrong = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e), None)
        if wrong is not None:
            near = tokenizer.decode(ids[max(0, wrong - 3):wrong + 1])
            raise Hint(f"conversation {number}, token {wrong} ({tokenizer.decode([ids[wrong]])!r}, after {near!r}) "
                       f"should be {'trained' if expected[wrong] else 'masked'}: TRL trains each assistant reply and the "
                       "<|im_end|> that closes it, and nothing else (not the '<|im_start|>assistant' header)")
    return f"correct: your mask matches TRL's on all three conversations ({sum(expected)} of {len(ids)} tokens trained in the last)"
