"""What the training exercises' checks share: build the learner's trainer on a fresh model, hold it to
the exercise's budget, train it, and make sure the result was trained here, from the model given.

A training exercise hands the check a function, `make_trainer(model, tokenizer, train_dataset)`,
that returns an `SFTTrainer`. The check calls it with a model it loaded itself, so a passing result
is one the learner's configuration trained within the budget: not a model loaded from an earlier
run, not an adapter trained elsewhere, not a trainer fed the held-out questions.
"""
import torch

from .checks import Hint


def weights_fingerprint(model) -> list:
    """One number per weight tensor of the model itself (an adapter's added weights left out): changes when
    any weight is replaced or loaded over."""
    return [float(p.detach().float().sum()) for name, p in model.named_parameters() if "lora_" not in name]


def built_trainer(make_trainer, model, tokenizer, train_dataset, steps: int, batch: int):
    """The learner's trainer for `model`, checked against the budget before anything trains."""
    from trl import SFTTrainer

    fingerprint = weights_fingerprint(model)
    try:
        trainer = make_trainer(model, tokenizer, train_dataset)
    except ValueError as e:
        if "bf16" in str(e) or "fp16" in str(e):
            raise Hint(f"SFTConfig refused the precision ({e}): pass "
                       "**helpers.detect_hardware().trainer_precision(), which picks bf16, fp16 or fp32 here") from None
        raise
    if not isinstance(trainer, SFTTrainer):
        raise Hint(f"make the function return the SFTTrainer it builds (not yet trained), got {type(trainer).__name__}")
    trained = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    if trained is not model:
        raise Hint("the trainer trains another model than the one passed in: give SFTTrainer the `model` argument")
    if weights_fingerprint(model) != fingerprint:
        raise Hint("the model's weights changed before training began (a checkpoint loaded over them?): "
                   "the check trains the model it passes in, from its own weights")
    args = trainer.args
    if not 0 < args.max_steps <= steps:
        raise Hint(f"max_steps is {args.max_steps}: set it in SFTConfig, at most {steps}")
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
    if per_step > batch:
        raise Hint(f"{per_step} conversations a step (per_device_train_batch_size x gradient_accumulation_steps) "
                   f"is over the budget of {batch}")
    return trainer


def trained_on_none_of(trainer, tokenizer, held_out) -> None:
    """Refuse a trainer whose training data holds any of these held-out conversations' questions."""
    text = "\n".join(tokenizer.batch_decode(list(trainer.train_dataset["input_ids"])))
    leaked = [q for q in (_question(row["messages"][-2]["content"]) for row in held_out) if q in text]
    if leaked:
        raise Hint(f"the trainer trains on {len(leaked)} of the held-out questions the check scores (such as "
                   f"{leaked[0][:60]!r}): train on the train_dataset passed in")


def _question(content: str) -> str:
    """A user message without the task's instruction before its first blank line (instructions repeat across the set)."""
    return content.partition("\n\n")[2] or content


def train(trainer) -> str:
    """Train (the loss on the trained tokens only, on a CPU: the same loss, faster); say what the loss did."""
    from ..training import use_trained_token_loss_on_cpu

    use_trained_token_loss_on_cpu(trainer)
    with torch.enable_grad():
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    steps = trainer.state.global_step
    if len(losses) > 1:
        return f"{steps} steps took the loss from {losses[0]:.2f} to {losses[-1]:.2f}"
    return f"{steps} steps" + (f" ended at a loss of {losses[0]:.2f}" if losses else "")
