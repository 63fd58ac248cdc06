"""A small compatibility shim that lets LightEval 0.13.0 run offline on this stack.

Why: building LightEval's task registry imports every built-in task module, also for custom-task
runs, and three of them fail without network or with huggingface_hub 2.x (`tiny_benchmarks`
downloads a file at import time; `mt_bench` and `mix_eval` call an `HfApi.list_models` argument
that no longer exists). One failing import aborts the whole run. The shim skips those three and
turns any other failing built-in module into a warning. It also keeps LightEval's sample cache
where `cache_dir` says: for a model given by an absolute path, LightEval joins the path onto
`cache_dir` and so writes its cache inside the model's own folder. Drop the shim once LightEval
fixes both.

One more trap it undoes: importing LightEval's transformers backend runs
`torch.set_grad_enabled(False)` for the whole process (and evaluating a model in memory does it
again), so training in the same notebook afterwards fails with "element 0 of tensors does not
require grad". `apply()` turns autograd back on after the import, and `run_lighteval` after a run.

And one across libraries: accelerate keeps its state (mixed precision included) in one object per
process, so after a `Trainer` with `bf16=True` every later `Accelerator()`, LightEval's too,
evaluates under bf16 autocast instead of the model config's dtype. Lesson 05 caught it: a LoRA
adapter and its exact merge scored differently once a model had been trained in the same kernel.
`apply()` resets that state before each evaluation.

Use `apply()` before building a LightEval pipeline in Python, or run the CLI through
`python -m helpers.lighteval_compat accelerate ...` (same arguments as `lighteval accelerate`).
"""
import importlib
import logging
import sys
import warnings

SKIPPED_MODULES = {"tiny_benchmarks", "mt_bench", "mix_eval"}
log = logging.getLogger(__name__)


def _load_each(modules, module_path):
    """Import each built-in task module, skipping the broken ones, and collect its task configs."""
    from lighteval.tasks.registry import Registry

    configs = {}
    for name in modules:
        if name in SKIPPED_MODULES:
            continue
        try:
            configs.update(Registry._extract_configs(importlib.import_module(module_path(name))))
        except Exception as error:  # one broken built-in module must not abort the run
            warnings.warn(f"LightEval built-in task module {name!r} skipped: {type(error).__name__}: {error}")
    return configs


def forget_training_precision() -> None:
    """Drop accelerate's per-process state, so the next Accelerator() takes its own precision (none)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def apply() -> None:
    """Patch LightEval's registry loaders (idempotent) and set the offline environment."""
    import os

    from lighteval.tasks.registry import Registry

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    forget_training_precision()
    if getattr(Registry, "_course_shim", False):
        return

    def load_from_files(files, module_prefix):
        return _load_each([f.stem for f in files], lambda name: f"{module_prefix}.{name}")

    def load_from_subdirs(subdirs):
        return _load_each([d.name for d in subdirs], lambda name: f"lighteval.tasks.tasks.{name}.main")

    Registry._load_from_files = staticmethod(load_from_files)
    Registry._load_from_subdirs = staticmethod(load_from_subdirs)
    _keep_sample_cache_in_cache_dir()
    import lighteval.models.transformers.transformers_model  # noqa: F401  (its import turns autograd off)
    import torch

    torch.set_grad_enabled(True)
    Registry._course_shim = True


def _keep_sample_cache_in_cache_dir():
    from pathlib import Path

    from lighteval.utils.cache_management import SampleCache

    def init(self, model_config):  # SampleCache.__init__, with the model path made relative
        self.model_config = model_config
        self.model_hash = self.get_model_hash(model_config)
        name = str(model_config.model_name).lstrip("/\\")
        self.cache_dir = Path(model_config.cache_dir).expanduser() / name / self.model_hash
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.registry = None
        self.existing_indices = self._load_cached_indices()
        self._task_hashes = {}

    SampleCache.__init__ = init


def main(argv=None) -> None:
    """`lighteval` with the shim applied: `python -m helpers.lighteval_compat accelerate MODEL TASKS ...`."""
    apply()
    from lighteval.__main__ import app

    app(args=list(sys.argv[1:] if argv is None else argv), prog_name="lighteval")


if __name__ == "__main__":
    main()
