import json

import pytest
from datasets import Dataset

import helpers
from helpers.evaluation import evalsets
from helpers.data import CHAT_DATA, conversation_problem


@pytest.fixture(scope="module")
def chat_set():
    return helpers.load_chat_dataset("offline")


def test_chat_set_is_large_varied_and_valid(chat_set):
    train, test = chat_set["train"], chat_set["test"]
    assert len(train) >= 1000 and len(test) >= 200
    assert helpers.validate_messages(train) == len(train)
    assert len(set(train["task"])) >= 15 and set(train["task"]) == set(test["task"])
    roles = [[m["role"] for m in conv] for conv in train["messages"]]
    assert sum(r[0] == "system" for r in roles) > 200, "some conversations must have a system message"
    assert sum(r.count("assistant") > 1 for r in roles) > 200, "some conversations must be multi-turn"
    assert all(row["source"].startswith("natural-instructions-v1/") for row in train)


def test_held_out_prompts_never_appear_in_training(chat_set):
    seen = {m["content"] for conv in chat_set["train"]["messages"] for m in conv if m["role"] == "user"}
    train_inputs = {text.split("\n\n", 1)[-1] for text in seen}
    for conv in chat_set["test"]["messages"]:
        assert conv[-2]["content"].split("\n\n", 1)[-1] not in train_inputs


def test_no_benchmark_question_is_in_the_chat_set():
    texts = [m["content"] for split in ("train", "test")
             for line in (CHAT_DATA / f"{split}.jsonl").read_text().splitlines()
             for m in json.loads(line)["messages"]]
    assert len(evalsets.benchmark_questions()) > 15000
    assert evalsets.leaked_questions(texts) == []


def test_leak_check_finds_a_planted_benchmark_question():
    question = evalsets.load_gsm8k()[0]["question"]
    assert evalsets.leaked_questions(["Solve this: " + question], [question, "short one?"]) == [question]


GOOD = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
BAD = [
    ([{"role": "bot", "content": "x"}], "did you mean 'assistant'"),
    ([{"role": "user"}], "has no 'content' key"),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "  "}], "assistant message is empty"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "two user messages in a row"),
    (GOOD + [{"role": "system", "content": "late"}], "system message may only come first"),
    (GOOD + [{"role": "user", "content": "and?"}], "ends with a user message"),
    ([{"role": "user", "content": [{"type": "image"}]}], "multimodal"),
    ("Hi there", "expected a list"),
    ([], "no messages"),
    ([{"role": "assistant", "content": "Hello"}], "must start with a user message"),
    ([{"role": "user", "content": 42}], "not a string"),
    (["Hi"], "is a str, not a dict"),
    ([{"role": "user", "content": "x"}, {"role": "tool", "content": "{}"}], "must follow the assistant"),
    # the chapter's tool call spelling: no template reads "tool" and "parameters"
    ([{"role": "user", "content": "x"}, {"role": "assistant", "content": "",
      "tool_calls": [{"tool": "calculator", "parameters": {"x": 1}}]}], "tool call 0 has ['parameters', 'tool']"),
    ([{"role": "user", "content": "x"}, {"role": "assistant", "content": "", "tool_calls": {"name": "w"}}],
     "not a list"),
]


@pytest.mark.parametrize("conversation, problem", BAD)
def test_each_problem_is_named_with_a_fix(conversation, problem):
    message = conversation_problem(conversation)
    assert message and problem in message and "Fix" in message


def test_valid_conversations_pass():
    tool_call = [{"role": "user", "content": "Weather in Paris?"},
                 {"role": "assistant", "content": None,
                  "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": {"city": "Paris"}}}]},
                 {"role": "tool", "content": "18 C"},
                 {"role": "assistant", "content": "It is 18 C."}]
    assert conversation_problem(GOOD) is None
    assert conversation_problem([{"role": "system", "content": "Be brief."}] + GOOD) is None
    assert conversation_problem(tool_call) is None
    assert conversation_problem(GOOD[:1], require_assistant_last=False) is None


def test_first_bad_row_is_reported_by_index():
    rows = [{"messages": GOOD}] * 3 + [{"messages": [{"role": "human", "content": "x"}]}, {"messages": []}]
    with pytest.raises(helpers.ConversationError, match=r"^Conversation 3: message 0: unknown role 'human'"):
        helpers.validate_messages(Dataset.from_list(rows))
    assert helpers.validate_messages(GOOD) == 1  # a single conversation
    assert helpers.validate_messages([GOOD, GOOD]) == 2


def test_a_dataset_without_messages_names_its_columns():
    with pytest.raises(helpers.ConversationError, match=r"columns: \['question', 'answer'\].*formatting_func"):
        helpers.validate_messages(Dataset.from_dict({"question": ["q"], "answer": ["a"]}))


CHAPTER_IMAGE = [{"role": "user", "content": [{"type": "text", "text": "What's in this image?"},
                                              {"type": "image", "image_url": "https://example.com/image.jpg"}]}]


def test_multimodal_parts_are_checked_where_a_vision_model_is_meant():
    with pytest.raises(helpers.ConversationError, match="image part 1 has \\['image_url', 'type'\\].*Fix"):
        helpers.validate_messages(CHAPTER_IMAGE, require_assistant_last=False, multimodal=True)
    for image in ({"type": "image", "url": "cat.png"}, {"type": "image", "path": "cat.png"},
                  {"type": "image_url", "image_url": {"url": "cat.png"}}):  # OpenAI's form, which processors convert
        conversation = [{"role": "user", "content": [CHAPTER_IMAGE[0]["content"][0], image]}]
        assert helpers.validate_messages(conversation, require_assistant_last=False, multimodal=True) == 1
    assert "text part 0" in conversation_problem([{"role": "user", "content": [{"type": "text"}]}], False, True)


def test_the_image_keys_are_the_ones_transformers_processors_read():
    import inspect

    from transformers.processing_utils import ProcessorMixin

    from helpers.data import IMAGE_KEYS
    assert str(list(IMAGE_KEYS)).replace("'", '"') in inspect.getsource(ProcessorMixin)
