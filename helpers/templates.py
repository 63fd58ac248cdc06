"""Real chat templates of five text model families and two vision ones, rendering, which tokens an
SFT run trains on, and parsing a reply's tool calls back into a message.

The `.jinja` files in `helpers/chat_templates/` are the templates these models ship in their
`tokenizer_config.json` (see the README there for where each comes from). We render them with
transformers' own Jinja renderer and each family's special tokens, so what you see here is what
`apply_chat_template` produces for that model.
"""
import contextlib
from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateError

TEMPLATE_DIR = Path(__file__).parent / "chat_templates"


@dataclass(frozen=True)
class TemplateFamily:
    name: str          # what the notebooks and the widget show
    file: str          # in helpers/chat_templates/
    model: str         # the Hub model the template comes from
    bos_token: str
    eos_token: str
    end_of_turn: str   # the text that closes an assistant turn (trained along with the reply)

    @property
    def template(self) -> str:
        return (TEMPLATE_DIR / self.file).read_text()


FAMILIES = {
    "chatml": TemplateFamily("ChatML (SmolLM2)", "smollm2.jinja", "HuggingFaceTB/SmolLM2-135M-Instruct",
                             "<|im_start|>", "<|im_end|>", "<|im_end|>"),
    "qwen2.5": TemplateFamily("ChatML (Qwen2.5)", "qwen2.5.jinja", "Qwen/Qwen2.5-7B-Instruct",
                              "", "<|im_end|>", "<|im_end|>"),
    "mistral": TemplateFamily("Mistral v0.3", "mistral-v0.3.jinja", "mistralai/Mistral-7B-Instruct-v0.3",
                              "<s>", "</s>", "</s>"),
    "llama3": TemplateFamily("Llama 3.1", "llama-3.1.jinja", "meta-llama/Llama-3.1-8B-Instruct",
                             "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>"),
    "gemma": TemplateFamily("Gemma 2", "gemma-2.jinja", "google/gemma-2-2b-it",
                            "<bos>", "<eos>", "<end_of_turn>"),
}
# Vision-language models' templates: content is a list of parts, each image part becomes the placeholder
# tokens the model's processor fills with image features. Kept apart from FAMILIES: they expect parts,
# not the plain strings of the course's data and the template explorer.
VISION_FAMILIES = {
    "smolvlm": TemplateFamily("SmolVLM", "smolvlm.jinja", "HuggingFaceTB/SmolVLM-256M-Instruct",
                              "<|im_start|>", "<end_of_utterance>", "<end_of_utterance>"),
    "qwen2.5-vl": TemplateFamily("Qwen2.5-VL", "qwen2.5-vl.jinja", "Qwen/Qwen2.5-VL-7B-Instruct",
                                 "", "<|im_end|>", "<|im_end|>"),
}
# How a Qwen-format reply (Qwen2.5's `<tool_call>{json}</tool_call>`) turns back into a message:
# a response template for `tokenizer.parse_response`, the inverse of the chat template. It is the one TRL
# ships for Qwen3 (trl.chat_template_utils.qwen3_template) without the <think> field Qwen2.5 lacks.
QWEN_RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open": "<tool_call>", "close_pattern": r"</tool_call>\s*", "repeats": True,
                       "content": "json", "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
    },
}
# SmolLM2's template with {% generation %} around each assistant reply: it renders the same text,
# and lets transformers/TRL mark the assistant tokens (`assistant_only_loss=True` needs this).
TRAINING_TEMPLATE = (TEMPLATE_DIR / "smollm2-training.jinja")


class TemplateRenderError(ValueError):
    """A template refused a conversation (or is broken); the message says which and why."""


def family(key: str) -> TemplateFamily:
    known = {**FAMILIES, **VISION_FAMILIES}
    if key not in known:
        raise ValueError(f"Unknown template family {key!r}. Available: {', '.join(known)}")
    return known[key]


def training_template() -> str:
    return TRAINING_TEMPLATE.read_text()


def render(messages, template: str = "chatml", add_generation_prompt: bool = False, tools=None,
           continue_final_message: bool = False, **template_kwargs) -> str:
    """The text a family's template (a key of FAMILIES or VISION_FAMILIES) or a pasted Jinja template produces."""
    from transformers.utils.chat_template_utils import render_jinja_template

    spec = FAMILIES.get(template) or VISION_FAMILIES.get(template)
    source = spec.template if spec else template
    tokens = {"bos_token": spec.bos_token, "eos_token": spec.eos_token} if spec else \
        {"bos_token": "<s>", "eos_token": "</s>"}
    try:
        rendered, _ = render_jinja_template([list(messages)], tools=tools, chat_template=source,
                                            add_generation_prompt=add_generation_prompt,
                                            continue_final_message=continue_final_message,
                                            **tokens, **template_kwargs)
    except (TemplateError, TypeError) as e:  # a TypeError: a field the template reads is missing (e.g. a tool call's name)
        who = spec.name if spec else "This template"
        raise TemplateRenderError(f"{who} refuses this conversation: {e}") from e
    return rendered[0]


def assistant_spans(text: str, messages, end_of_turn: str = "") -> list:
    """Character spans of each assistant reply in `text` (plus the end-of-turn marker after it)."""
    spans, cursor = [], 0
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            continue
        content = content.strip()
        start = text.find(content, cursor)
        if start < 0:
            continue  # the template rewrote this message; it cannot be located
        end = start + len(content)
        if message["role"] == "assistant":
            if end_of_turn and text.startswith(end_of_turn, end):
                end += len(end_of_turn)
            spans.append((start, end))
        cursor = end
    return spans


def token_mask(tokenizer, text: str, messages, assistant_only: bool = True, end_of_turn: str = "") -> list:
    """[(token text, trained?)] for `text`: every token, or only the assistant replies' tokens."""
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    spans = assistant_spans(text, messages, end_of_turn)
    pieces = []
    for start, end in encoding["offset_mapping"]:
        trained = not assistant_only or any(s <= start and end <= e for s, e in spans)
        pieces.append((text[start:end], trained))
    return pieces


TRAINED_STYLE = "background: rgba(46, 160, 67, 0.35); border-radius: 3px"   # readable on light and dark
MASKED_STYLE = "background: rgba(127, 127, 127, 0.15); border-radius: 3px"


def mask_html(pieces) -> str:
    """Tokens in two colours: trained (green) and masked (grey), one box per token."""
    import html

    def box(piece, trained):
        shown = html.escape(piece).replace("\n", "↵\n")
        return f'<span style="{TRAINED_STYLE if trained else MASKED_STYLE}">{shown}</span>'

    trained = sum(t for _, t in pieces)
    legend = (f'<span style="{TRAINED_STYLE}">trained</span> {trained} tokens &nbsp; '
              f'<span style="{MASKED_STYLE}">masked</span> {len(pieces) - trained} tokens')
    body = "".join(box(p, t) for p, t in pieces)
    return f'<div>{legend}</div><pre style="white-space: pre-wrap; line-height: 1.6">{body}</pre>'


def mask_text(pieces) -> str:
    """The same in plain text, for terminals and executed notebooks: trained tokens inside ⟦ ⟧."""
    out, inside = [], False
    for piece, trained in pieces:
        if trained != inside:
            out.append("⟦" if trained else "⟧")
            inside = trained
        out.append(piece)
    if inside:
        out.append("⟧")
    trained = sum(t for _, t in pieces)
    return "".join(out) + f"\n[{trained} of {len(pieces)} tokens trained, shown inside ⟦ ⟧]"


def flatten_content(messages, placeholder: str = "[{type}]") -> list:
    """A copy in which multimodal content (a list of parts) becomes one string.

    Text parts are joined; every other part (an image, audio) becomes a placeholder such as
    "[image]". This is lossy on purpose: a text-only model never sees the image, and the
    placeholder makes that visible instead of silently dropping it.
    """
    flat = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = [p.get("text", "") if p.get("type") == "text" else placeholder.format(type=p.get("type", "part"))
                     for p in content]
            message = {**message, "content": " ".join(part for part in parts if part)}
        flat.append(message)
    return flat


@contextlib.contextmanager
def vocab_read_once(tokenizer):
    """Inside this block `tokenizer.vocab` is copied from the tokenizer once, then kept current.

    TRL's `clone_chat_template` reads `tokenizer.vocab` once per token it checks or adds, about a
    hundred times, and each read copies the whole vocabulary into a new dict: a third of a second
    for Gemma's 262k tokens, half a minute in all. Tokens are only ever added there, and an added
    token changes nothing but the added-token table, so a copy is brought up to date from that small
    table whenever the vocabulary grew (tests/test_templates.py: the same vocabulary, the same clone)."""
    kept = {}  # size of the vocabulary -> its dict

    def get_vocab():
        size = len(tokenizer)
        if size not in kept:
            vocab = kept.popitem()[1] if kept else type(tokenizer).get_vocab(tokenizer)
            vocab.update(tokenizer.added_tokens_encoder)
            kept[size] = vocab
        return kept[size]

    tokenizer.get_vocab = get_vocab  # the `vocab` property calls self.get_vocab()
    try:
        yield tokenizer
    finally:
        del tokenizer.get_vocab
