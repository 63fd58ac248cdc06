"""Your own data: local files in every supported format and shape, and the exact message for each bad file."""
import json

import pandas as pd
import pytest

import helpers
from helpers.chat_files import DataFileError, read_chat_file
from helpers.data import CHAT_DATA, conversation_problem, describe_truncation, truncation_report

HI = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


def jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def error_of(path) -> str:
    with pytest.raises(DataFileError) as caught:
        helpers.load_chat_dataset(str(path))
    return str(caught.value)


def test_the_shipped_example_file_loads_with_a_held_out_split():
    data = helpers.load_chat_dataset(str(CHAT_DATA / "own_data_example.csv"))
    assert (len(data["train"]), len(data["test"])) == (11, 1)
    first = read_chat_file(CHAT_DATA / "own_data_example.csv")[0]["messages"]
    assert first == [{"role": "user", "content": "What does SFT stand for?"},
                     {"role": "assistant", "content": "Supervised fine-tuning."}]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_each_format_reads_messages(tmp_path, suffix):
    rows = [{"messages": HI}, {"messages": HI[:1] + [{"role": "assistant", "content": "Hey."}]}]
    path = tmp_path / f"chats{suffix}"
    if suffix == ".jsonl":
        jsonl(path, rows)
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".csv":
        pd.DataFrame({"messages": [json.dumps(r["messages"]) for r in rows]}).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    assert [row["messages"] for row in read_chat_file(path)] == [r["messages"] for r in rows]


@pytest.mark.parametrize("row", [
    {"question": "Hi", "answer": "Hello!"},
    {"prompt": "Hi", "completion": "Hello!"},
    {"prompt": HI[:1], "completion": HI[1:]},
    {"instruction": "Hi", "input": "", "output": "Hello!"},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
])
def test_other_shapes_are_converted_to_messages(tmp_path, row):
    assert read_chat_file(jsonl(tmp_path / "chats.jsonl", [row]))[0]["messages"] == HI


def test_a_folder_gives_its_train_and_test_files(tmp_path):
    jsonl(tmp_path / "train.jsonl", [{"messages": HI}] * 3)
    pd.DataFrame({"question": ["Q?"], "answer": ["A."]}).to_csv(tmp_path / "test.csv", index=False)
    data = helpers.load_chat_dataset(str(tmp_path))
    assert (len(data["train"]), len(data["test"])) == (3, 1)


def test_a_broken_jsonl_line_is_named(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"messages": HI}) + '\n{"messages": [{"role": "user"\n')
    assert error_of(path) == (f"{path}, line 2: not valid JSON (Expecting ',' delimiter, column 30). "
                              "Fix: each line must be one complete JSON object; check quotes, commas and "
                              "brackets there.")


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_bytes(json.dumps({"messages": HI}).encode() + b'\n{"messages": "caf\xe9"}\n')
    assert error_of(path) == (f"{path}, line 2: the file is not UTF-8 text (byte 0xe9). Fix: save it as "
                              "UTF-8, e.g. `iconv -f latin1 -t utf-8 chats.jsonl > utf8-chats.jsonl` (if it "
                              "was written as Latin-1), or your editor's 'Save with encoding: UTF-8'.")


def test_rows_without_messages_name_the_shapes_the_course_converts(tmp_path):
    path = tmp_path / "chats.csv"
    path.write_text("text,label\nhello,1\n")
    assert error_of(path) == (f"{path}, line 2: the row has no 'messages' (its columns: ['label', 'text']). "
                              "Fix: give each row a 'messages' list of {'role': ..., 'content': ...} dicts, "
                              "or use a shape the course converts: question/answer, prompt/completion, "
                              "instruction/output (Alpaca), conversations of from/value (ShareGPT).")


def test_an_empty_file_says_what_a_row_looks_like(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n")
    assert error_of(path) == (f"{path} is empty: it holds no conversations. Fix: add rows, e.g. one JSON "
                              'object per line: {"messages": [{"role": "user", "content": "..."}, '
                              '{"role": "assistant", "content": "..."}]}')


def test_a_bad_conversation_is_named_by_file_and_line(tmp_path):
    path = jsonl(tmp_path / "chats.jsonl", [{"messages": HI}, {"messages": [{"role": "User", "content": "x"}]}])
    assert error_of(path) == (f"{path}, line 2: message 0: unknown role 'User'. Fix: did you mean 'user'? "
                              "Roles are lower case, without spaces.")


def test_a_csv_header_without_rows_and_a_missing_path(tmp_path):
    (tmp_path / "chats.csv").write_text("question,answer\n")
    assert error_of(tmp_path / "chats.csv") == (f"{tmp_path / 'chats.csv'} has a header (question, answer) but "
                                                "no rows. Fix: add one conversation per row.")
    assert "no such file or folder" in error_of(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("role, fix", [(" user", "did you mean 'user'? Roles are lower case, without spaces."),
                                       ("Assistant", "did you mean 'assistant'? Roles are lower case, without spaces."),
                                       ("Human ", "did you mean 'user'?")])
def test_roles_with_stray_spaces_or_case_get_a_did_you_mean(role, fix):
    assert conversation_problem([{"role": role, "content": "x"}]) == f"message 0: unknown role {role!r}. Fix: {fix}"


@pytest.mark.slow
def test_truncation_report_counts_cut_conversations_and_those_that_teach_nothing(offline_model):
    _, tokenizer = offline_model
    long_question = [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "Yes."}]
    long_reply = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "word " * 300}]
    report = truncation_report([HI, long_question, long_reply], tokenizer, max_length=64)
    assert (report["cut"], report["teach_nothing"], report["teach_nothing_indices"]) == (2, 1, [1])
    assert describe_truncation(report).startswith("2 of 3 conversations are longer than max_length=64 tokens")
    assert truncation_report([HI], tokenizer, 64)["cut"] == 0
