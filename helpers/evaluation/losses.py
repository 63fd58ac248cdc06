"""The loss of a model on held-out conversations: the before/after measure for any chat data.

Exact match needs one right answer per question (the course's offline set has them); open chat data
such as smoltalk has none. What every set has is a reference reply, and the model's mean loss on it
(nats per token, given the turns before it) falls as the model learns the data's replies: the same
quantity training minimises, measured on conversations it never trained on.
"""
import torch

from .replies import chat_prompt, prompt_of


def reply_token_ids(tokenizer, conversation, max_length: int) -> tuple:
    """(token ids, reply length): the conversation up to its last assistant reply rendered by the chat
    template, the last `reply length` ids being that reply (with its end-of-turn). Long ones are cut
    from the left, so the reply is kept whole where it fits."""
    prompt = prompt_of(conversation)
    prompt_text = chat_prompt(prompt, tokenizer)
    full_text = tokenizer.apply_chat_template(conversation[:len(prompt) + 1], tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template renders the prompt differently inside the whole conversation, so "
                         "the reply's tokens cannot be found; score with a template whose turns only append")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
    reply = len(ids) - len(prompt_ids)
    return ids[-max_length:], min(reply, max_length)


def reply_losses(model, tokenizer, conversations, batch_size: int = 8, max_length: int = 1024) -> list:
    """Per conversation, the model's mean loss on its last assistant reply (teacher-forced, no generation)."""
    rows = [reply_token_ids(tokenizer, conversation, max_length) for conversation in conversations]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # similar lengths share a batch: less padding
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    losses, was_training = {}, model.training
    model.eval()
    # A model a Trainer trained with bf16 or fp16 keeps Accelerate's autocast wrapper on its forward, so
    # in the same notebook it would be scored in half precision after training and in fp32 before;
    # the original forward, which Accelerate keeps beside it, scores both in the model's own dtype.
    wrapped = model.__dict__.get("forward")
    if wrapped is not None and hasattr(model, "_original_forward"):
        model.forward = model._original_forward
    try:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = max(len(rows[i][0]) for i in batch)
            ids = torch.full((len(batch), width), pad)
            labels = torch.full((len(batch), width), -100)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                tokens, reply = rows[i]
                ids[row, :len(tokens)] = torch.tensor(tokens)
                mask[row, :len(tokens)] = 1
                labels[row, len(tokens) - reply:len(tokens)] = ids[row, len(tokens) - reply:len(tokens)]
            with torch.no_grad():
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
            token_loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:].to(logits.device),
                                                           ignore_index=-100, reduction="none")
            counts = (labels[:, 1:] != -100).sum(1).to(logits.device)
            losses.update(zip(batch, (token_loss.sum(1) / counts).tolist()))
    finally:
        model.train(was_training)
        if wrapped is not None:
            model.forward = wrapped
    return [losses[i] for i in range(len(rows))]


def held_out_loss(model, tokenizer, conversations, **options) -> float:
    """The mean of `reply_losses`: one number for a before/after comparison."""
    losses = reply_losses(model, tokenizer, conversations, **options)
    return sum(losses) / len(losses)


def held_out_conversations(dataset, count: int) -> list:
    """The first `count` conversations (`messages`) of a dataset's test split, for `held_out_loss`."""
    split = dataset["test"]
    return [row["messages"] for row in split.select(range(min(count, split.num_rows)))]
