"""The exercises of lesson 01 (chat templates): their data and their self-checks."""
from .checks import Hint, exercise_check
from ..data import conversation_problem
from ..templates import TemplateRenderError, render, training_template

PIRATE = ("<|im_start|>system\nYou are a pirate.<|im_end|>\n"
          "<|im_start|>user\nWhere is the treasure?<|im_end|>\n"
          "<|im_start|>assistant\nUnder the palm tree, matey.<|im_end|>\n")

BROKEN = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "human", "content": "Name a primary colour."},
    {"role": "assistant", "content": "Red."},
    {"role": "user", "content": "Another one?"},
    {"role": "user", "content": "Not red."},
    {"role": "assistant", "content": "Blue."},
]

# Exercise 3: a "### Role:" format. Each message is "### Role:\n<content>\n\n"; the generation
# prompt is "### Assistant:\n".
HEADER_CASES = [
    ([{"role": "user", "content": "Hi"}], False, "### User:\nHi\n\n"),
    ([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello!"}], False,
     "### System:\nBe kind.\n\n### User:\nHi\n\n### Assistant:\nHello!\n\n"),
    ([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
      {"role": "user", "content": "3+3?"}], True,
     "### User:\n2+2?\n\n### Assistant:\n4\n\n### User:\n3+3?\n\n### Assistant:\n"),
]

COUNTING = [
    {"role": "user", "content": "Translate 'cat' into French."},
    {"role": "assistant", "content": "Chat."},
    {"role": "user", "content": "And 'dog'?"},
    {"role": "assistant", "content": "Chien."},
]


@exercise_check("Exercise 1 (write the messages)")
def check_pirate_messages(messages):
    problem = conversation_problem(messages)
    if problem:
        raise Hint(f"the list is not a valid conversation: {problem}")
    rendered = render(messages, "chatml")
    if rendered != PIRATE:
        raise Hint(_first_difference(rendered, PIRATE))
    return "correct: your messages render to exactly that string"


@exercise_check("Exercise 2 (fix the conversation)")
def check_fixed_conversation(fixed):
    problem = conversation_problem(fixed)
    if problem:
        raise Hint(f"still broken: {problem}")
    text = " ".join(m["content"] for m in fixed)
    lost = [m["content"] for m in BROKEN if m["content"] not in text]
    if lost:
        raise Hint(f"the fix lost some of the learner's text: {lost}. Merge messages instead of deleting them.")
    if [m["content"] for m in fixed if m["role"] == "assistant"] != ["Red.", "Blue."]:
        raise Hint("keep both assistant replies, 'Red.' and 'Blue.', as assistant messages")
    users = [m["content"] for m in fixed if m["role"] == "user"]
    turns = [["Name a primary colour."], ["Another one?", "Not red."]]  # what the user wrote before each reply
    if len(users) != 2 or any(part not in said for said, parts in zip(users, turns) for part in parts):
        raise Hint("what the user wrote must stay in user messages, before the reply it asks for (moving it into "
                   "the system message hides it from the turn it belongs to): one user message per reply")
    return "correct: valid, and nothing the user wrote was lost"


@exercise_check("Exercise 3 (write a template)")
def check_header_template(template):
    if not isinstance(template, str) or "{%" not in template:
        raise Hint("the template must be a string of Jinja code, with {% for message in messages %} ...")
    for number, (messages, generation_prompt, expected) in enumerate(HEADER_CASES, 1):
        try:
            rendered = render(messages, template, add_generation_prompt=generation_prompt)
        except TemplateRenderError as e:
            raise Hint(f"case {number}: {e}") from None
        if rendered != expected:
            raise Hint(f"case {number} (add_generation_prompt={generation_prompt}): "
                       + _first_difference(rendered, expected))
    return f"correct: all {len(HEADER_CASES)} conversations render exactly"


@exercise_check("Exercise 4 (count the trained tokens)")
def check_trained_tokens(n_trained, tokenizer):
    # computed here, at check time: no function a learner can import returns an exercise's answer
    expected = sum(tokenizer.apply_chat_template(COUNTING, chat_template=training_template(), return_dict=True,
                                                 return_assistant_tokens_mask=True)["assistant_masks"])
    total = len(tokenizer.apply_chat_template(COUNTING, return_dict=False))
    replies_only = sum(len(tokenizer(m["content"], add_special_tokens=False)["input_ids"])
                       for m in COUNTING if m["role"] == "assistant")
    if n_trained == expected:
        return f"correct: {expected} of {total} tokens are trained"
    if n_trained == total:
        raise Hint("that counts every token; with assistant-only loss the system and user turns are masked")
    if n_trained == replies_only:
        raise Hint("close: each reply's closing <|im_end|> is trained too; it is how the model learns to stop")
    raise Hint(f"not {n_trained}. Render with templates.training_template() and "
               "return_assistant_tokens_mask=True, then add up the mask")


def _first_difference(got: str, expected: str) -> str:
    for index, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return (f"the rendering differs at character {index}: yours has {got[index:index + 25]!r}, "
                    f"expected {expected[index:index + 25]!r}")
    shorter, longer = ("yours", "expected") if len(got) < len(expected) else ("expected", "yours")
    rest = (expected if len(got) < len(expected) else got)[min(len(got), len(expected)):]
    return f"{shorter} stops early; {longer} continues with {rest[:30]!r}"
