"""A learner's own chat data from local files (JSONL, JSON, CSV, Parquet), with errors that name
the file, the line and the fix.

Rows in the `messages` format are used as they are. Four other common shapes are converted to it:
question/answer columns, prompt/completion pairs, Alpaca's instruction/input/output, and ShareGPT's
`conversations` of from/value turns. `data.load_chat_dataset(path)` is the way in.
"""
import csv
import io
import json
from pathlib import Path

from .data import ROLE_FIXES, conversation_problem

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
SHAPES = ("messages", "question/answer", "prompt/completion", "instruction/output (Alpaca)",
          "conversations of from/value (ShareGPT)")
SPLITS = ("train", "test")


class DataFileError(ValueError):
    """A data file cannot be used; the message names the file, the line or row, and the fix."""


def is_local(source: str) -> bool:
    """True when `source` names a file or folder here rather than a Hub dataset."""
    path = Path(source).expanduser()
    return path.exists() or path.suffix.lower() in SUFFIXES or source.startswith((".", "/", "~"))


def load_chat_files(source: str, validate: bool = True, test_share: float = 0.1):
    """A DatasetDict with "train" and "test" splits of `messages` from a file or a folder.

    A folder holds train.* and test.* files (any supported type). A single file is split here:
    `test_share` of its conversations (at least one) are held out, with a fixed seed.
    """
    from datasets import Dataset, DatasetDict

    files = _split_files(Path(source).expanduser())
    splits = {split: read_chat_file(path, validate) for split, path in files.items()}
    if "test" not in splits:
        rows = splits.pop("train")
        if len(rows) < 2:
            raise DataFileError(f"{files['train']} has {len(rows)} conversation; holding one out for "
                                "evaluation needs at least 2. Fix: add conversations.")
        held_out = Dataset.from_list(rows).train_test_split(test_size=max(1, round(test_share * len(rows))), seed=0)
        print(f"{files['train'].name}: {len(rows)} conversations; {len(held_out['test'])} held out as the "
              "test split (a folder with train.* and test.* files chooses its own)")
        return held_out
    return DatasetDict({split: Dataset.from_list(rows) for split, rows in splits.items()})


def _split_files(path: Path) -> dict:
    if path.is_file():
        return {"train": path}
    if not path.exists():
        raise DataFileError(f"{path}: no such file or folder (relative paths start in {Path.cwd()}). "
                            "Fix: check the path, or give an absolute one.")
    found = {p.stem: p for p in sorted(path.iterdir()) if p.suffix.lower() in SUFFIXES}
    if "train" in found:
        return {split: found[split] for split in SPLITS if split in found}
    if len(found) == 1:
        return {"train": next(iter(found.values()))}
    raise DataFileError(f"{path}: expected train.jsonl and test.jsonl (or .json, .csv, .parquet), found "
                        f"{sorted(p.name for p in found.values()) or 'no data files'}. Fix: name the files "
                        "train.* and test.*, or pass one file.")


def read_chat_file(path, validate: bool = True) -> list:
    """The file's rows as dicts with a `messages` list, converted from another shape where needed.

    Raises DataFileError naming the file, the line (JSONL, CSV) or row (JSON, Parquet), and the fix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"{path}: unsupported file type {suffix or '(none)'!r}. Fix: save the data as "
                            ".jsonl (one conversation per line), .json, .csv or .parquet.")
    located = _read_parquet(path) if suffix == ".parquet" else \
        {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}[suffix](path, _text_of(path))
    if not located:
        raise DataFileError(f"{path} is empty: it holds no conversations. Fix: add rows, e.g. one JSON "
                            'object per line: {"messages": [{"role": "user", "content": "..."}, '
                            '{"role": "assistant", "content": "..."}]}')
    rows = []
    for where, row in located:
        row = as_messages_row(row, path, where)
        problem = conversation_problem(row["messages"]) if validate else None
        if problem:
            raise DataFileError(f"{path}, {where}: {problem}")
        rows.append(row)
    return rows


def _text_of(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DataFileError(
            f"{path}, line {line}: the file is not UTF-8 text (byte 0x{data[e.start]:02x}). Fix: save it "
            f"as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name}` (if it was "
            "written as Latin-1), or your editor's 'Save with encoding: UTF-8'.") from None


def _read_jsonl(path: Path, text: str) -> list:
    located = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            located.append((f"line {number}", _parse_json(line, path, f"line {number}",
                                                        "each line must be one complete JSON object")))
    return located


def _read_json(path: Path, text: str) -> list:
    if not text.strip():
        return []
    data = _parse_json(text, path, None, "the file must be one JSON list of rows")
    if isinstance(data, dict) and "messages" not in data:
        data = next((v for v in data.values() if isinstance(v, list)), data)  # {"data": [...]} or similar
    if not isinstance(data, list):
        raise DataFileError(f"{path}: expected a JSON list of rows, got a {type(data).__name__}. Fix: write "
                            '[{"messages": [...]}, ...], or one row per line in a .jsonl file.')
    return [(f"row {index}", row) for index, row in enumerate(data)]


def _parse_json(text: str, path: Path, where: str | None, rule: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        place = where or f"line {e.lineno}"
        raise DataFileError(f"{path}, {place}: not valid JSON ({e.msg}, column {e.colno}). "
                            f"Fix: {rule}; check quotes, commas and brackets there.") from None


def _read_csv(path: Path, text: str) -> list:
    reader = csv.DictReader(io.StringIO(text))
    located, line = [], 2  # line 1 is the header
    for row in reader:
        located.append((f"line {line}", row))
        line = reader.line_num + 1
    if not located and reader.fieldnames:
        raise DataFileError(f"{path} has a header ({', '.join(reader.fieldnames)}) but no rows. Fix: add "
                            "one conversation per row.")
    return located


def _read_parquet(path: Path) -> list:
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.read_table(path)
    except Exception as e:  # pyarrow's errors differ by version; say which file and why
        raise DataFileError(f"{path}: cannot be read as Parquet ({e}). Fix: check that it is a Parquet "
                            "file, or save the data as .jsonl.") from None
    return [(f"row {index}", row) for index, row in enumerate(table.to_pylist())]


def as_messages_row(row, path, where: str) -> dict:
    """The row with a `messages` list, converted from the shapes in SHAPES; DataFileError if none fits."""
    if not isinstance(row, dict):
        raise DataFileError(f"{path}, {where}: a row must be a JSON object with a 'messages' key, got a "
                            f"{type(row).__name__}. Fix: write each row as {{\"messages\": [...]}}.")
    if "messages" in row:
        messages = row["messages"]
        if isinstance(messages, str):  # a CSV cell holds the list as JSON text
            messages = _parse_json(messages, path, where, "the messages cell must hold a JSON list of {role, content} objects")
        return {**row, "messages": messages}
    messages = _converted(row)
    if messages is None:
        raise DataFileError(f"{path}, {where}: the row has no 'messages' (its columns: {sorted(row)}). Fix: give each "
                            "row a 'messages' list of {'role': ..., 'content': ...} dicts, or use a shape "
                            f"the course converts: {', '.join(SHAPES[1:])}.")
    return {"messages": messages}


def _converted(row: dict) -> list | None:
    def turn(role, content):
        return {"role": role, "content": content}

    if "question" in row and "answer" in row:
        return [turn("user", row["question"]), turn("assistant", row["answer"])]
    if "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, list) and isinstance(completion, list):  # TRL's conversational pairs
            return prompt + completion
        return [turn("user", prompt), turn("assistant", completion)]
    if "instruction" in row and "output" in row:
        question = "\n\n".join(part for part in (row["instruction"], row.get("input")) if part)
        return [turn("user", question), turn("assistant", row["output"])]
    if isinstance(row.get("conversations"), list):
        roles = {**ROLE_FIXES, "system": "system", "user": "user", "assistant": "assistant"}
        return [turn(roles.get(str(m.get("from")).lower(), m.get("from")), m.get("value"))
                if isinstance(m, dict) else m for m in row["conversations"]]
    return None
