"""Two answer styles to train adapters on: the same questions, visibly different replies.

Lesson 04 trains one LoRA adapter per style and switches between them on one base model. A fixed
wrapper around the answer is learned in a few steps, and anyone can see which adapter answered.
"""
from .data import load_chat_dataset
from .recipes import CPU

STYLES = {
    "formal": "Certainly. The answer is: {answer}",   # a polite, fixed opening
    "shout": "{ANSWER}!!!",                           # capitals and exclamation marks
}
FORMAL_OPENING = STYLES["formal"].split("{")[0].strip()   # "Certainly. The answer is:"
SHOUT_ENDING = STYLES["shout"].split("}")[-1]            # "!!!"
FORMAL_MARK = FORMAL_OPENING.split()[0]                  # "Certainly." the first thing a formal adapter learns


def styled(answer: str, style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"Unknown style {style!r}. Styles: {sorted(STYLES)}")
    answer = answer.strip().rstrip(".!")
    return STYLES[style].format(answer=answer, ANSWER=answer.upper())


def has_style(reply: str, style: str) -> bool:
    """Does a generated reply follow the style's pattern (whatever the answer inside)?"""
    reply = reply.strip()
    if style == "formal":
        return reply.startswith(FORMAL_OPENING)
    if style == "shout":
        body = reply.removesuffix(SHOUT_ENDING)
        return reply.endswith(SHOUT_ENDING) and bool(body.strip()) and body == body.upper()  # "12!!!" counts
    raise ValueError(f"Unknown style {style!r}. Styles: {sorted(STYLES)}")


def style_of(reply: str) -> str:
    """Which adapter a reply most likely came from, by each style's mark: 'formal', 'shout' or 'base'.

    Looser than `has_style`: a shouted reply that is not all capitals ('Nyx!!!') still counts as shout,
    and a formal reply that opens with 'Certainly.' but then answers in its own words counts as formal
    (16 steps teach the opening word before the whole phrase on some CPUs).
    """
    reply = reply.strip()
    if reply.startswith(FORMAL_MARK):
        return "formal"
    return "shout" if reply.endswith(SHOUT_ENDING) else "base"


def styled_dataset(style: str, split: str = "train"):
    """The course's single-turn short-answer conversations, with every reply rewritten in `style`."""
    data = load_chat_dataset("offline")[split]
    short = data.filter(lambda row: len(row["messages"]) <= 3 and row["kind"] != "generation")

    def restyle(row):
        return {"messages": [dict(m, content=styled(m["content"], style)) if m["role"] == "assistant" else m
                             for m in row["messages"]]}

    return short.map(restyle)


def style_adapter(style: str, model_source: str = "offline", steps: int = CPU["max_steps"],
                  learning_rate: float = 1e-3, r: int = 8, batch_size: int = CPU["batch_size"]) -> str:
    """The folder of a LoRA adapter trained on `style` (lesson 03's recipe), trained once and cached."""
    return style_recipe(style, model_source, steps, learning_rate, r, batch_size).trained()


def style_recipe(style: str, model_source: str = "offline", steps: int = CPU["max_steps"],
                 learning_rate: float = 1e-3, r: int = 8, batch_size: int = CPU["batch_size"]):
    """The `Recipe` of a style adapter (its `folder` says where it is cached)."""
    from .recipes import Recipe

    styled("", style)  # an unknown style fails here, before any training
    return Recipe(f"style-{style}", learning_rate, steps, batch_size, lora_r=r, model_source=model_source)
