import contextlib
import json

import pytest

from helpers import templates
from helpers.data import CHAT_DATA
from helpers.templates import FAMILIES, TemplateRenderError, render

CONVERSATION = [{"role": "system", "content": "You are concise."},
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4."},
                {"role": "user", "content": "And 3+3?"}]


@pytest.fixture(scope="module")
def tokenizer(offline_model):
    return offline_model[1]


def test_the_chatml_template_is_the_one_inside_the_offline_model(tokenizer):
    assert FAMILIES["chatml"].template == tokenizer.chat_template
    assert render(CONVERSATION, "chatml", add_generation_prompt=True) == \
        tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)


@pytest.mark.parametrize("key, expected", [
    ("chatml", "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n"),
    ("qwen2.5", "<|im_start|>assistant\n4.<|im_end|>\n"),
    ("mistral", "<s>[INST] What is 2+2?[/INST] 4.</s>[INST] You are concise.\n\nAnd 3+3?[/INST]"),
    ("llama3", "<|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>"),
])
def test_each_family_renders_its_own_format(key, expected):
    assert expected in render(CONVERSATION, key, add_generation_prompt=True)


def test_gemma_refuses_a_system_message_with_a_clear_error():
    with pytest.raises(TemplateRenderError, match="Gemma 2 refuses this conversation: System role not supported"):
        render(CONVERSATION, "gemma")
    assert render(CONVERSATION[1:], "gemma", add_generation_prompt=True).endswith(
        "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n")


def test_unknown_family_lists_the_available_ones():
    with pytest.raises(ValueError, match="Available: chatml, qwen2.5, mistral, llama3, gemma, smolvlm, qwen2.5-vl"):
        templates.family("vicuna")


def test_a_broken_pasted_template_is_reported_not_raised_as_jinja_internals():
    with pytest.raises(TemplateRenderError, match="This template refuses"):
        render(CONVERSATION, "{% for m in messages %}{{ m.content }")


def test_training_template_renders_the_same_text_as_the_stock_one(tokenizer):
    rows = [json.loads(line) for line in (CHAT_DATA / "train.jsonl").read_text().splitlines()[:200]]
    for row in rows:
        stock = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        assert stock == tokenizer.apply_chat_template(row["messages"], tokenize=False,
                                                      chat_template=templates.training_template())


def test_span_mask_agrees_with_transformers_generation_mask(tokenizer):
    rows = [json.loads(line) for line in (CHAT_DATA / "train.jsonl").read_text().splitlines()[:50]]
    for row in rows:
        encoded = tokenizer.apply_chat_template(row["messages"], chat_template=templates.training_template(),
                                                return_assistant_tokens_mask=True, return_dict=True)
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        pieces = templates.token_mask(tokenizer, text, row["messages"], end_of_turn="<|im_end|>")
        assert [int(trained) for _, trained in pieces] == list(encoded["assistant_masks"])


def test_mask_covers_every_reply_and_nothing_else(tokenizer):
    conversation = CONVERSATION + [{"role": "assistant", "content": "6."}]
    text = render(conversation, "chatml")
    pieces = templates.token_mask(tokenizer, text, conversation, end_of_turn="<|im_end|>")
    assert "".join(p for p, trained in pieces if trained) == "4.<|im_end|>6.<|im_end|>"
    assert all(trained for _, trained in templates.token_mask(tokenizer, text, conversation, assistant_only=False))


def test_mask_renderings_show_both_kinds_of_token():
    pieces = [("<|im_start|>user\nHi", False), ("Hello", True), ("<|im_end|>", True)]
    html = templates.mask_html(pieces)
    assert html.count("<span") == 5 and "trained</span> 2 tokens" in html and "&lt;|im_start|&gt;" in html
    assert templates.mask_text(pieces).startswith("<|im_start|>user\nHi⟦Hello<|im_end|>⟧")


IMAGE_QUESTION = [{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                               {"type": "image", "url": "cat.png"}]}]


@pytest.mark.parametrize("key, placeholder", [("smolvlm", "User: What is in this picture?<image><end_of_utterance>"),
                                              ("qwen2.5-vl", "picture?<|vision_start|><|image_pad|><|vision_end|>")])
def test_vision_templates_turn_an_image_part_into_its_placeholder(key, placeholder):
    assert placeholder in render(IMAGE_QUESTION, key, add_generation_prompt=True)


def test_a_template_missing_a_field_it_reads_is_a_clear_error():
    chapter_call = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "",
                    "tool_calls": [{"tool": "calculator", "parameters": {"x": 1}}]}]
    with pytest.raises(TemplateRenderError, match="ChatML \\(Qwen2.5\\) refuses this conversation"):
        render(chapter_call, "qwen2.5")


def test_a_qwen_format_reply_parses_back_into_the_message_that_renders_it(tokenizer):
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    message = {"role": "assistant", "tool_calls": [call]}
    prompt = render([{"role": "user", "content": "Weather in Oslo?"}], "qwen2.5", add_generation_prompt=True)
    reply = render([{"role": "user", "content": "Weather in Oslo?"}, {**message, "content": ""}], "qwen2.5")[len(prompt):]
    assert "<tool_call>" in reply
    assert tokenizer.parse_response(reply, templates.QWEN_RESPONSE_TEMPLATE, prefix=prompt) == message
    plain = tokenizer.parse_response("It is cold.<|im_end|>", templates.QWEN_RESPONSE_TEMPLATE, prefix=prompt)
    assert plain == {"role": "assistant", "content": "It is cold."}


@pytest.mark.parametrize("key, digest", [
    ("smolvlm", "830005085ddd94cec605b6e21b885b28ffad6e3f82ee6a212c523533e8f04f01"),
    ("qwen2.5-vl", "a0bc6f6fc7a29a80017a433e8f03a1cc1236e838a944a2d034295a60c4f2fddb"),
])
def test_vision_templates_are_the_models_own_byte_for_byte(key, digest):
    import hashlib

    from helpers.templates import TEMPLATE_DIR
    assert hashlib.sha256((TEMPLATE_DIR / templates.family(key).file).read_bytes()).hexdigest() == digest
    assert digest in (TEMPLATE_DIR / "README.md").read_text()


def test_vocab_read_once_returns_the_current_vocabulary_as_tokens_are_added():
    from transformers import AutoTokenizer

    import helpers
    fresh = AutoTokenizer.from_pretrained(helpers.model_path("offline"))
    with templates.vocab_read_once(fresh):
        first = fresh.vocab
        assert fresh.vocab is first, "an unchanged vocabulary is not copied again"
        fresh.add_tokens(["<course_test_token>"])
        assert fresh.vocab == type(fresh).get_vocab(fresh) and "<course_test_token>" in fresh.vocab
    assert "get_vocab" not in vars(fresh), "the tokenizer is left as it was"


@pytest.mark.slow  # clones onto Gemma-3-270M twice (about 40 s)
def test_clone_chat_template_gives_the_same_result_with_the_vocabulary_read_once():
    import copy

    import torch
    from trl import clone_chat_template

    import helpers
    base, base_tokenizer = helpers.load_model("offline-base")
    results = []
    for read_once in (True, False):
        model, tokenizer = copy.deepcopy(base), copy.deepcopy(base_tokenizer)
        torch.manual_seed(0)  # the new embedding rows are drawn at random
        with templates.vocab_read_once(tokenizer) if read_once else contextlib.nullcontext():
            results.append(clone_chat_template(model, tokenizer, helpers.model_path("offline")))
    (model_a, tok_a, ids_a), (model_b, tok_b, ids_b) = results
    assert ids_a == ids_b and tok_a.get_vocab() == tok_b.get_vocab() and tok_a.eos_token == tok_b.eos_token
    assert tok_a.chat_template == tok_b.chat_template
    assert torch.equal(model_a.get_input_embeddings().weight, model_b.get_input_embeddings().weight)
