"""The course's chat data, and a validator for any dataset in the `messages` format."""
from pathlib import Path

CHAT_DATA = Path(__file__).parent / "chat_data"
ROLES = ("system", "user", "assistant", "tool")
ROLE_FIXES = {"human": "user", "bot": "assistant", "gpt": "assistant", "model": "assistant",
              "ai": "assistant", "chatbot": "assistant", "function": "tool", "sys": "system"}


class ConversationError(ValueError):
    """A conversation breaks the `messages` format; the message says where and how to fix it."""


def load_chat_dataset(source: str = "offline", config: str | None = None, validate: bool = True):
    """A DatasetDict with "train" and "test" splits of `messages` conversations.

    "offline" is the course's own set (1,800 train / 400 test conversations from
    Natural-Instructions, see helpers/chat_data/README.md); a local file or folder (JSONL, JSON,
    CSV, Parquet: your own data, see `chat_files`) is read with errors that name the file and line;
    any other value is a Hub dataset name, e.g. "HuggingFaceTB/smoltalk" with config
    "everyday-conversations".
    """
    from datasets import load_dataset

    from .chat_files import is_local, load_chat_files

    if source == "offline":
        files = {split: str(CHAT_DATA / f"{split}.jsonl") for split in ("train", "test")}
        dataset = load_dataset("json", data_files=files)
    elif is_local(source):
        return load_chat_files(source, validate)  # validated row by row, so errors name the line
    else:
        dataset = load_dataset(source, config)
    if validate:
        for split in dataset:
            validate_messages(dataset[split])
    return dataset


def validate_messages(data, require_assistant_last: bool = True, multimodal: bool = False) -> int:
    """Check one conversation, a list of them, or a dataset with a `messages` column.

    Returns the number of conversations checked; raises ConversationError at the first bad one,
    naming its index, the message, the problem and the fix. `multimodal=True` accepts content as a
    list of parts (for a vision model's template and processor) and checks each part instead.
    """
    conversations = _as_conversations(data)
    for index, conversation in enumerate(conversations):
        problem = conversation_problem(conversation, require_assistant_last, multimodal)
        if problem:
            raise ConversationError(f"Conversation {index}: {problem}")
    return len(conversations)


def _as_conversations(data) -> list:
    column_names = getattr(data, "column_names", None)
    if column_names is not None:  # a datasets.Dataset
        if "messages" not in column_names:
            raise ConversationError(
                f"The dataset has no 'messages' column (columns: {column_names}). Fix: convert "
                "each row into a list of {'role': ..., 'content': ...} dicts, or train on it "
                "with a formatting_func (lesson 02).")
        return data["messages"]
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list) and data and isinstance(data[0], dict) and "messages" not in data[0]:
        return [data]  # a single conversation: a list of message dicts
    if isinstance(data, list):
        return [row["messages"] if isinstance(row, dict) and "messages" in row else row for row in data]
    raise ConversationError(f"Expected a conversation (a list of message dicts), a list of "
                            f"conversations or a dataset, got {type(data).__name__}.")


def conversation_problem(messages, require_assistant_last: bool = True, multimodal: bool = False) -> str | None:
    """What is wrong with one conversation, with the fix, or None if it is well formed."""
    if not isinstance(messages, list):
        return (f"expected a list of message dicts, got {type(messages).__name__}. Fix: wrap the "
                "text as [{'role': 'user', 'content': text}].")
    if not messages:
        return "it has no messages. Fix: add a user message and the assistant's reply."
    previous = None
    for position, message in enumerate(messages):
        problem = _message_problem(message, position, previous, multimodal)
        if problem:
            return f"message {position}: {problem}"
        previous = message["role"]
    if require_assistant_last and previous != "assistant":
        return (f"it ends with a {previous} message, so there is no reply to learn from. Fix: add "
                "the assistant's reply, or pass require_assistant_last=False for prompts.")
    return None


def _message_problem(message, position: int, previous: str | None, multimodal: bool = False) -> str | None:
    if not isinstance(message, dict):
        return (f"is a {type(message).__name__}, not a dict. Fix: write it as "
                "{'role': 'user', 'content': '...'}.")
    for key in ("role", "content"):
        if key not in message and not (key == "content" and message.get("tool_calls")):  # a bare call needs no text
            return f"has no '{key}' key (it has {sorted(message)}). Fix: add '{key}'."
    role, content = message["role"], message.get("content")
    if role not in ROLES:
        return f"unknown role {role!r}. Fix: {_role_hint(role)}"
    calls_tool_only = message.get("tool_calls") and content in (None, "")  # needs no text
    return _tool_calls_problem(message.get("tool_calls")) or \
        (None if calls_tool_only else _content_problem(role, content, multimodal)) or \
        _order_problem(role, position, previous)


def _role_hint(role) -> str:
    key = str(role).strip().lower()
    if key in ROLES:
        return f"did you mean '{key}'? Roles are lower case, without spaces."
    if key in ROLE_FIXES:
        return f"did you mean '{ROLE_FIXES[key]}'?"
    return f"use one of {', '.join(ROLES)}."


TOOL_CALL_SHAPE = '{"type": "function", "function": {"name": ..., "arguments": {...}}}'


def _tool_calls_problem(calls) -> str | None:
    """Chat templates read each call as TOOL_CALL_SHAPE (transformers' and OpenAI's format)."""
    if calls is None:
        return None
    if not isinstance(calls, list):
        return f"tool_calls is a {type(calls).__name__}, not a list. Fix: a list of {TOOL_CALL_SHAPE}."
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or "name" not in function or "arguments" not in function:
            keys = sorted(call) if isinstance(call, dict) else type(call).__name__
            return (f"tool call {number} has {keys}; templates read {TOOL_CALL_SHAPE}, and render a call "
                    "without them as nothing or fail. Fix: move the tool's name and its parameters into "
                    "function.name and function.arguments.")
    return None


# The keys from which transformers' processors load an image part (ProcessorMixin.apply_chat_template);
# tests/test_data.py checks this list against transformers' source.
IMAGE_KEYS = ("image", "url", "path", "base64")


def _parts_problem(parts: list) -> str | None:
    for number, part in enumerate(parts):
        if not isinstance(part, dict) or "type" not in part:
            return f"part {number} is not a {{'type': ...}} dict. Fix: write {{'type': 'text', 'text': ...}}."
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            return f"text part {number} has no 'text' string. Fix: {{'type': 'text', 'text': '...'}}."
        if part["type"] == "image" and not any(key in part for key in IMAGE_KEYS):
            return (f"image part {number} has {sorted(part)}: the template prints an image placeholder, but "
                    f"a processor loads the picture only from one of {', '.join(IMAGE_KEYS)}, so no image "
                    "would fill it. Fix: {'type': 'image', 'url': ...} (OpenAI's spelling is "
                    "{'type': 'image_url', 'image_url': {'url': ...}}).")
    return None


def _content_problem(role: str, content, multimodal: bool = False) -> str | None:
    if isinstance(content, list):
        if multimodal:
            return _parts_problem(content)
        return ("content is a list of parts (multimodal). A text-only chat template cannot render "
                "it. Fix: join the text parts into one string, or validate with multimodal=True for "
                "a vision model.")
    if not isinstance(content, str):
        return f"content is a {type(content).__name__}, not a string. Fix: convert it with str()."
    if not content.strip():
        return f"the {role} message is empty. Fix: give it text, or remove it."
    return None


def _order_problem(role: str, position: int, previous: str | None) -> str | None:
    if role == "system":
        return None if position == 0 else ("a system message may only come first. Fix: move it to "
                                           "the start, or merge it into the first system message.")
    if previous in (None, "system") and role != "user":
        return f"the conversation must start with a user message, not {role}. Fix: add the user's question first."
    if role == previous and role in ("user", "assistant"):
        return (f"two {role} messages in a row; user and assistant must alternate. Fix: merge them, "
                f"or add the missing {'assistant' if role == 'user' else 'user'} message between them.")
    if role == "tool" and previous not in ("assistant", "tool"):
        return "a tool result must follow the assistant's tool call. Fix: add the assistant message with tool_calls first."
    return None


def truncation_report(conversations, tokenizer, max_length: int) -> dict:
    """Count, before training, the conversations that `max_length` cuts, and those it cuts before
    their first assistant reply: with the loss on the replies, those teach nothing.

    Returns counts and the indices of the conversations that would teach nothing (to filter them).
    """
    conversations = list(conversations)
    first_reply = [next((i for i, m in enumerate(c) if m["role"] == "assistant"), len(c)) for c in conversations]
    whole = tokenizer.apply_chat_template(conversations, tokenize=False)
    prompts = tokenizer.apply_chat_template([c[:i] for c, i in zip(conversations, first_reply)],
                                            tokenize=False, add_generation_prompt=True)
    lengths = [len(ids) for ids in tokenizer(whole, add_special_tokens=False)["input_ids"]]
    before_reply = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    nothing = [i for i, n in enumerate(before_reply) if n >= max_length]
    return {"conversations": len(lengths), "max_length": max_length, "longest": max(lengths, default=0),
            "cut": sum(n > max_length for n in lengths), "teach_nothing": len(nothing),
            "teach_nothing_indices": nothing}


def describe_truncation(report: dict) -> str:
    """One sentence for a `truncation_report`, with the fix when anything is cut."""
    text = (f"{report['cut']} of {report['conversations']:,} conversations are longer than max_length="
            f"{report['max_length']} tokens (longest: {report['longest']})")
    if not report["cut"]:
        return text + "; nothing is cut."
    return (text + f" and lose their end; {report['teach_nothing']} of them are cut before the first "
            "assistant reply and would teach nothing. Fix: raise max_length, or leave those out (their "
            "indices are the report's teach_nothing_indices).")
