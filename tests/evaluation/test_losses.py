import pytest
import torch

import helpers
from helpers import evaluation


def conversations():
    data = helpers.load_chat_dataset("offline")["test"]
    return [row["messages"] for row in data.select(range(6))]


def test_batched_reply_losses_are_each_conversations_own_loss(offline_model):
    # the model's own loss with labels on the last reply only, one conversation at a time, unpadded
    model, tokenizer = offline_model
    chats = conversations()
    batched = evaluation.reply_losses(model, tokenizer, chats, batch_size=4)
    for chat, loss in zip(chats, batched):
        ids, reply = evaluation.losses.reply_token_ids(tokenizer, chat, max_length=1024)
        labels = torch.tensor([ids])
        labels[:, :len(ids) - reply] = -100
        with torch.no_grad():
            alone = model(input_ids=torch.tensor([ids]), labels=labels).loss.item()
        assert loss == pytest.approx(alone, abs=1e-3)
    ids, reply = evaluation.losses.reply_token_ids(tokenizer, chats[0], max_length=1024)
    assert tokenizer.decode(ids[-reply:]).startswith(chats[0][-1]["content"])  # the reply, then its end of turn
    assert evaluation.held_out_loss(model, tokenizer, chats) == pytest.approx(sum(batched) / len(batched), abs=1e-4)


def test_a_template_that_rewrites_earlier_turns_is_refused(offline_model):
    _, tokenizer = offline_model
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    rewriting = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    rewriting.chat_template = ("{% for m in messages %}{{ m.role }}{% if loop.last %}!{% endif %}: {{ m.content }}\n"
                               "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")
    with pytest.raises(ValueError, match="renders the prompt differently"):
        evaluation.losses.reply_token_ids(rewriting, chat, max_length=64)


def test_a_model_trained_in_mixed_precision_is_scored_as_before_training(fresh_accelerator_state):
    # Accelerate wraps a trained model's forward in autocast; the loss must not change precision with it
    from accelerate import Accelerator

    model, tokenizer = helpers.load_model("offline")
    chats = conversations()[:3]
    before = evaluation.reply_losses(model, tokenizer, chats)
    Accelerator(mixed_precision="bf16", cpu=True).prepare_model(model)
    assert "forward" in model.__dict__  # the autocast wrapper is on
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = evaluation.reply_losses(model, tokenizer, chats)
    assert evaluation.reply_losses(model, tokenizer, chats) == pytest.approx(before, abs=1e-5) and half != before
    assert model.forward is model.__dict__["forward"]  # the wrapper is put back for any further training
