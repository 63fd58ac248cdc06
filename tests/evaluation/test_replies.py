import pytest

from helpers import evaluation


@pytest.mark.parametrize("reply, references, correct", [
    ("Yes.", ["Yes."], True), ("yes", ["Yes."], True), ("  D. ", ["D."], True),
    ("Yes, it does.", ["Yes."], False), ("every day", ["Every day.", "Daily."], True), ("B", ["D."], False),
])
def test_exact_match_ignores_case_spacing_and_surrounding_punctuation(reply, references, correct):
    assert evaluation.exact_match(reply, references) is correct


def test_prompt_stops_before_the_last_reply():
    conversation = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    assert evaluation.prompt_of(conversation) == conversation[:3]


def test_batched_generation_matches_one_at_a_time(offline_model):
    model, tokenizer = offline_model
    prompts = [[{"role": "user", "content": "What is the capital of France?"}],
               [{"role": "user", "content": "Answer yes or no: is the sky blue on a clear day? Please explain"}]]
    together = evaluation.generate_replies(model, tokenizer, prompts, max_new_tokens=8, batch_size=2)
    alone = [evaluation.generate_replies(model, tokenizer, [p], max_new_tokens=8)[0] for p in prompts]
    assert together == alone and "Paris" in together[0]
    assert tokenizer.padding_side == "right", "the tokenizer's padding side is restored"


def test_batches_sorted_by_length_give_every_reply_in_the_order_asked(offline_model):
    import helpers

    model, tokenizer = offline_model
    rows = [r for r in helpers.load_chat_dataset()["test"] if r["kind"] != "generation"][:10]
    prompts = [evaluation.prompt_of(r["messages"]) for r in rows]
    lengths = [len(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)) for p in prompts]
    assert lengths != sorted(lengths), "the prompts must come in an order that sorting changes"
    sorted_batches = evaluation.generate_replies(model, tokenizer, prompts, max_new_tokens=6, batch_size=4)
    one_by_one = [evaluation.generate_replies(model, tokenizer, [p], max_new_tokens=6)[0] for p in prompts]
    assert sorted_batches == one_by_one


def test_score_held_out_reports_each_row(offline_model):
    import helpers

    rows = [r for r in helpers.load_chat_dataset()["test"] if r["kind"] == "yes/no"][:3]
    table = evaluation.score_held_out(*offline_model, rows, max_new_tokens=4)
    assert list(table.columns) == ["task", "question", "expected", "reply", "correct"] and len(table) == 3


def test_end_of_turn_replies_tell_a_reply_that_ended_from_one_cut_off(offline_model):
    import helpers

    model, tokenizer = offline_model
    rows = evaluation.held_out_questions(helpers.load_chat_dataset()["test"], 4)
    ended = evaluation.end_of_turn_replies(model, tokenizer, rows, max_new_tokens=64)
    cut = evaluation.end_of_turn_replies(model, tokenizer, rows, max_new_tokens=1)
    assert ended.stopped.any() and not cut.stopped.any()
    lengths = [len(tokenizer(reply, add_special_tokens=False)["input_ids"]) for reply in ended.reply]
    assert all(length < 63 for length, stopped in zip(lengths, ended.stopped) if stopped)  # it ended before the limit
    assert list(ended.reply) == evaluation.generate_replies(model, tokenizer, [evaluation.prompt_of(r["messages"]) for r in rows], 64)
    assert "<|im_end|>" not in "".join(ended.reply)  # the reply text leaves the special token out
