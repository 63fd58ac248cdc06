"""The versions of the stack the course is tested on, printed first in every lesson."""
import importlib.metadata
import platform

STACK = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes",
         "lighteval", "gguf", "ipywidgets", "papermill")


def print_versions() -> dict:
    """Print Python's and each library's version ('not installed' where missing)."""
    versions = {"python": platform.python_version()}
    for name in STACK:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    print("  ".join(f"{name} {version}" for name, version in versions.items()))
    return versions


def adapter_methods_problem() -> str | None:
    """Why transformers' own adapter methods raise with the installed peft, or None when they work.

    transformers 5.24 needs peft >= 0.22 for `add_adapter`, `set_adapter`, `enable_adapters`,
    `disable_adapters`, `active_adapters` and `delete_adapter` on a transformers model, and no such
    peft was published (2026-12-02); peft's own `PeftModel`, which the lessons use, still works.
    """
    from packaging.version import Version

    try:
        from transformers.integrations.peft import MIN_PEFT_VERSION
    except ImportError:  # a transformers without the constant checks nothing
        return None
    peft, transformers = importlib.metadata.version("peft"), importlib.metadata.version("transformers")
    if Version(peft) >= Version(MIN_PEFT_VERSION):
        return None
    return (f"transformers {transformers} needs peft >= {MIN_PEFT_VERSION} for its own adapter methods "
            f"(add_adapter, set_adapter, enable/disable_adapters on a transformers model); this is peft {peft}, "
            "so they raise. PeftModel (peft's own class, used in this lesson) still works. Fix: the course's "
            "pins, pip install transformers==5.23.0 peft==0.21.2, or a peft release >= "
            f"{MIN_PEFT_VERSION} once published.")


def print_adapter_support() -> None:
    """One line for a lesson's adapter cells: do transformers' adapter methods work with this peft?"""
    problem = adapter_methods_problem()
    print(f"Warning: {problem}" if problem else
          f"transformers {importlib.metadata.version('transformers')} and peft "
          f"{importlib.metadata.version('peft')}: PeftModel and transformers' own adapter methods both work")
