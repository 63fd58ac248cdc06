"""Helpers for the Fine-Tuning Small LLMs course, in three rooms by who uses them.

- `helpers` itself (flat): what the lessons import, the plumbing a learner would otherwise copy
  between notebooks (finding the offline model, picking dtype and device, validating data,
  recording results). The libraries the course teaches (transformers, TRL, PEFT, LightEval) are
  called in the notebooks themselves.
- `helpers.evaluation`: lesson 05's family (replies and exact match, evaluation sets, LightEval
  runs and its compatibility shim, judges, code execution).
- `helpers.exercises`: the self-checks of the exercise notebooks (`lesson01` .. `lesson05`).
- `helpers.course`: for instructors and CI (the command line, batch runs, sweeps, grading, the
  generated exercise notebooks, the Colab cells); no lesson imports it.
"""
import importlib
import os
import pkgutil
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0"


def _hub_telemetry_off_unless_asked() -> None:
    """The lessons send the Hub no usage telemetry unless a learner sets HF_HUB_DISABLE_TELEMETRY=0
    (before starting Jupyter, or before `import helpers`)."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    constants = sys.modules.get("huggingface_hub.constants")  # a lesson may import transformers first,
    if constants is not None:                                  # which reads the variable once
        constants.HF_HUB_DISABLE_TELEMETRY = constants._is_true(os.environ["HF_HUB_DISABLE_TELEMETRY"])


_hub_telemetry_off_unless_asked()

if os.environ.get("COURSE_GPU_PEAK_FILE"):  # a notebook run by `python -m helpers run`: report its GPU peak
    from .measure import GPU_PEAK_FILE, write_gpu_peak_after_each_cell
    write_gpu_peak_after_each_cell(os.environ[GPU_PEAK_FILE])

if TYPE_CHECKING:  # for editors' go-to-definition; at run time each is imported on first use
    from .assets import MissingAssetError, check_assets
    from .chat_files import DataFileError
    from .data import ConversationError, load_chat_dataset, validate_messages
    from .hardware import detect_hardware
    from .measure import PeakMemory, size_on_disk
    from .models import chat, complete, count_parameters, load_model, model_file, model_path
    from .profiles import recommend_profile, resolve_profile, settings
    from .records import record_metrics
    from .versions import print_versions

# name -> module; imported on first use so `python -m helpers` starts without loading torch
_EXPORTS = {
    "detect_hardware": "hardware",
    "load_model": "models", "model_path": "models", "model_file": "models", "chat": "models", "complete": "models",
    "count_parameters": "models",
    "load_chat_dataset": "data", "validate_messages": "data", "ConversationError": "data",
    "DataFileError": "chat_files",
    "check_assets": "assets", "MissingAssetError": "assets",
    "settings": "profiles", "recommend_profile": "profiles", "resolve_profile": "profiles",
    "record_metrics": "records",
    "print_versions": "versions",
    "PeakMemory": "measure", "size_on_disk": "measure",
}
__all__ = sorted(_EXPORTS)
_SUBMODULES = {module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_")}
# Where modules of the old flat layout went: exercise notebooks handed out before the move say
# `from helpers import lesson04` or `helpers.lighteval_compat`, and keep working.
_MOVED = {
    **{f"lesson0{n}": f"exercises.lesson0{n}" for n in range(1, 6)}, "checks": "exercises.checks",
    **{name: f"evaluation.{name}" for name in ("evalsets", "scoring", "code_exec", "judge", "lighteval_compat",
                                                  "lighteval_runs", "lighteval_tasks")},
    "offline": "assets", "metrics": "records", "course_models": "recipes",
    "cli": "course.cli", "batch": "course.runner", "sweep": "course.sweep", "grading": "course.grading",
    "colab": "course.colab",
}


def submodules_on_first_use(package: str, path) -> callable:
    """A package's `__getattr__` that imports its submodules when first used (`helpers.evaluation.scoring`)."""
    names = {module.name for module in pkgutil.iter_modules(path)}

    def __getattr__(name):
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__


def __getattr__(name):
    if name in _SUBMODULES or name in _MOVED:
        return importlib.import_module(f".{_MOVED.get(name, name)}", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_SUBMODULES, *_EXPORTS})
