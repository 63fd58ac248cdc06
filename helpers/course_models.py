"""The fine-tuned models of lessons 02 and 03, for lesson 05 to evaluate.

Each is taken from the newest run of its lesson under `outputs/` (where the lesson saved it), and
otherwise trained once with the same recipe and cached, so lesson 05 never depends on an earlier
run having happened.
"""
from pathlib import Path


def newest_output(pattern: str, marker: str, roots=None):
    """The newest folder under outputs/ matching `pattern` that holds `marker`, or None."""
    roots = roots or [Path.cwd() / "outputs"]
    found = [p.parent for root in roots for p in Path(root).glob(f"{pattern}/{marker}")]
    return max(found, key=lambda p: (p / marker).stat().st_mtime) if found else None


def sft_model(steps: int = 16, learning_rate: float = 1e-4) -> str:
    """Lesson 02's fully fine-tuned model (a folder)."""
    from .data import load_chat_dataset
    from .recipes import train_cached

    found = newest_output("02_sft*", "model.safetensors")
    return str(found) if found else train_cached("chat-sft", load_chat_dataset()["train"], learning_rate, steps)


def lora_adapter(steps: int = 16, learning_rate: float = 1e-3, r: int = 8) -> str:
    """Lesson 03's LoRA adapter (a folder with adapter_config.json)."""
    from .data import load_chat_dataset
    from .recipes import train_cached

    found = newest_output("03_lora*/LoRA", "adapter_model.safetensors")
    if found:
        return str(found)
    return train_cached("chat-lora", load_chat_dataset()["train"], learning_rate, steps, lora_r=r)
