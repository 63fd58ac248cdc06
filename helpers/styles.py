"""Two answer styles to train adapters on: the same questions, visibly different replies.

Lesson 04 trains one LoRA adapter per style and switches between them on one base model. A fixed
wrapper around the answer is learned in a few steps, and anyone can see which adapter answered.
"""
from .data import load_chat_dataset

STYLES = {
    "formal": "Certainly. The answer is: {answer}",   # a polite, fixed opening
    "shout": "{ANSWER}!!!",                           # capitals and exclamation marks
}


def styled(answer: str, style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"Unknown style {style!r}. Styles: {sorted(STYLES)}")
    answer = answer.strip().rstrip(".!")
    return STYLES[style].format(answer=answer, ANSWER=answer.upper())


def has_style(reply: str, style: str) -> bool:
    """Does a generated reply follow the style's pattern (whatever the answer inside)?"""
    reply = reply.strip()
    if style == "formal":
        return reply.startswith("Certainly. The answer is:")
    if style == "shout":
        body = reply.removesuffix("!!!")
        return reply.endswith("!!!") and bool(body.strip()) and body == body.upper()  # "12!!!" counts
    raise ValueError(f"Unknown style {style!r}. Styles: {sorted(STYLES)}")


def styled_dataset(style: str, split: str = "train"):
    """The course's single-turn short-answer conversations, with every reply rewritten in `style`."""
    data = load_chat_dataset("offline")[split]
    short = data.filter(lambda row: len(row["messages"]) <= 3 and row["kind"] != "generation")

    def restyle(row):
        return {"messages": [dict(m, content=styled(m["content"], style)) if m["role"] == "assistant" else m
                             for m in row["messages"]]}

    return short.map(restyle)


def style_adapter(style: str, model_source: str = "offline", steps: int = 16, learning_rate: float = 1e-3,
                  r: int = 8, batch_size: int = 8) -> str:
    """The folder of a LoRA adapter trained on `style`, trained once (3-4 minutes on a CPU) and cached.

    This is lesson 03's recipe (SFTTrainer with a LoraConfig, assistant-only loss), kept here so that
    lesson 04 and its exercises share the adapters instead of training them twice.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from . import templates
    from .hardware import detect_hardware
    from .models import load_model, model_path
    from .offline import cache_dir

    styled("", style)  # an unknown style fails here, before any training
    name = f"{Path(model_path(model_source)).name}-{style}-steps{steps}-lr{learning_rate:g}-r{r}-b{batch_size}"
    folder = cache_dir() / "adapters" / name
    if (folder / "adapter_model.safetensors").exists():
        return str(folder)
    print(f"training the {style!r} adapter once ({steps} steps; 3-4 minutes on a 2-core CPU), cached in {folder}")
    model, tokenizer = load_model(model_source)
    tokenizer.chat_template = templates.training_template()
    args = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=batch_size,
                     learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=0.1, max_length=256,
                     assistant_only_loss=True, gradient_checkpointing=False, save_strategy="no",
                     report_to="none", seed=0, disable_tqdm=False, **detect_hardware().trainer_precision())
    lora = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=styled_dataset(style), processing_class=tokenizer,
                         peft_config=lora)
    trainer.train()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
    trainer.save_model(str(staging))
    tokenizer.save_pretrained(str(staging))
    shutil.rmtree(args.output_dir, ignore_errors=True)
    try:
        staging.rename(folder)  # atomic: an interrupted run never leaves a half-written adapter behind
    except OSError:  # another run cached the same adapter meanwhile: keep that one
        shutil.rmtree(staging, ignore_errors=True)
    return str(folder)
