"""The fine-tuned models of lessons 02 and 03, for lesson 05 to evaluate.

Each is taken from the newest run of its lesson under `outputs/` (where the lesson saved it), and
otherwise trained once with the same recipe and cached, so lesson 05 never depends on an earlier
run having happened.
"""
import re
from pathlib import Path

from .recipes import CPU  # lessons 02 and 03's recipe under the offline profile


def newest_output(run: str, marker: str, inside: str = "", roots=None):
    """The newest run folder of a lesson (`02_sft`, `02_sft-2`, ... as `fresh_output_dir` names them)
    holding `inside/marker`, or None. Side folders such as `02_sft-cli` or `02_sft-packing` hold
    other, shorter trainings and are never taken."""
    roots = roots or [Path.cwd() / "outputs"]
    runs = [p for root in roots for p in Path(root).glob(f"{run}*") if re.fullmatch(rf"{re.escape(run)}(-\d+)?", p.name)]
    found = [p / inside for p in runs if (p / inside / marker).exists()]
    return max(found, key=lambda p: (p / marker).stat().st_mtime) if found else None


def sft_model(steps: int = CPU["max_steps"], learning_rate: float = CPU["learning_rate"]) -> str:
    """Lesson 02's fully fine-tuned model (a folder)."""
    from .data import load_chat_dataset
    from .recipes import train_cached

    found = newest_output("02_sft", "model.safetensors")
    return str(found) if found else train_cached("chat-sft", load_chat_dataset()["train"], learning_rate, steps)


def lora_adapter(steps: int = CPU["max_steps"], learning_rate: float = CPU["lora_learning_rate"], r: int = CPU["lora_r"]) -> str:
    """Lesson 03's LoRA adapter (a folder with adapter_config.json)."""
    from .data import load_chat_dataset
    from .recipes import train_cached

    found = newest_output("03_lora", "adapter_model.safetensors", inside="LoRA")
    if found:
        return str(found)
    return train_cached("chat-lora", load_chat_dataset()["train"], learning_rate, steps, lora_r=r)
