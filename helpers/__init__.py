"""Helpers for the Fine-Tuning Small LLMs course.

They hold the plumbing a learner would otherwise copy between notebooks (finding the offline
model, picking dtype and device, validating data, recording metrics); the libraries the course
teaches (transformers, TRL, PEFT, LightEval) are called in the notebooks themselves.
"""
import importlib

__version__ = "0.1.0"

# name -> module; imported on first use so `python -m helpers` starts without loading torch
_EXPORTS = {
    "detect_hardware": "hardware",
    "load_model": "models", "model_path": "models", "chat": "models", "complete": "models",
    "count_parameters": "models",
    "load_chat_dataset": "data", "validate_messages": "data", "ConversationError": "data",
    "check_assets": "offline", "MissingAssetError": "offline",
    "settings": "profiles", "recommend_profile": "profiles",
    "record_metrics": "metrics",
    "print_versions": "versions",
    "PeakMemory": "measure", "size_on_disk": "measure",
}
__all__ = sorted(_EXPORTS)
_SUBMODULES = {"adapters", "batch", "checks", "cli", "data", "evalsets", "exercises", "hardware", "measure",
               "metrics", "models", "offline", "profiles", "styles", "templates", "versions", "widgets"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
