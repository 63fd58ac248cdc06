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
