"""LightEval 0.13.0 on this stack: what it breaks offline, and what it changes for the whole process.

Use `with lighteval_compat.session():` around any LightEval pipeline built in Python
(`lighteval_runs.run_lighteval` does), or run the CLI through
`python -m helpers.evaluation.lighteval_compat accelerate ...` (same arguments as `lighteval accelerate`),
which in a notebook is `%lighteval accelerate ...` after `register_magic()`.

The named patches (`PATCHES`), installed once per process, on LightEval's classes:
- `registry`: building LightEval's task registry imports every built-in task module, also for
  custom-task runs, and three of them fail without network or with huggingface_hub 2.x
  (`tiny_benchmarks` downloads a file at import time; `mt_bench` and `mix_eval` call an
  `HfApi.list_models` argument that no longer exists). One failing import aborts the whole run. The
  patch skips those three and turns any other failing built-in module into a warning.
- `sample_cache`: for a model given by an absolute path, LightEval joins the path onto `cache_dir`
  and so writes its sample cache inside the model's own folder; the patch keeps it in `cache_dir`.
- `shared_prompt_scoring` (speed, not a fix): LightEval scores a multiple-choice question by running
  the whole prompt once per choice and computing the 49,152-word output layer at every position.
  The patch scores each question's shared prompt once, keeps its key/value cache, and runs only the
  choices' own tokens on top of it, with the output layer only where a choice's token is predicted.
  Same log-probabilities up to float rounding and the same answers (tests/evaluation/test_lighteval.py
  compares it with LightEval's own loop on real questions); MMLU letters cost one forward pass
  instead of four.

The process-wide state a session sets and puts back on exit:
- autograd: importing LightEval's transformers backend runs `torch.set_grad_enabled(False)` for the
  whole process (and evaluating a model in memory does it again), so training in the same notebook
  afterwards fails with "element 0 of tensors does not require grad". A session ends with it on;
- accelerate's state: one object per process, mixed precision included, so after a `Trainer` with
  `bf16=True` LightEval's `Accelerator()` evaluates under bf16 autocast instead of the model's dtype
  (lesson 05 caught it: a LoRA adapter and its exact merge scored differently once a model had been
  trained in the same kernel). A session starts and ends with it reset.

The CLI entry point also sets `HF_HUB_OFFLINE`/`HF_DATASETS_OFFLINE` unless they are set already:
the course's local tasks need no Hub. (In a notebook the Hub libraries read them when first
imported, so a session cannot change them.)

Drop each patch once LightEval fixes what it works around; `TESTED_VERSION` says which release they
were written for, and a session on another release warns and installs only the patches whose
targets still exist.
"""
import importlib
import logging
import os
import sys
import warnings
from contextlib import contextmanager

SKIPPED_MODULES = {"tiny_benchmarks", "mt_bench", "mix_eval"}
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
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


def _skip_broken_builtin_tasks():
    from lighteval.tasks.registry import Registry

    def load_from_files(files, module_prefix):
        return _load_each([f.stem for f in files], lambda name: f"{module_prefix}.{name}")

    def load_from_subdirs(subdirs):
        return _load_each([d.name for d in subdirs], lambda name: f"lighteval.tasks.tasks.{name}.main")

    Registry._load_from_files = staticmethod(load_from_files)
    Registry._load_from_subdirs = staticmethod(load_from_subdirs)


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


def _score_choices_on_a_shared_prompt():
    from lighteval.models.transformers.transformers_model import TransformersModel

    loglikelihood_tokens = TransformersModel._lighteval_loglikelihood_tokens = TransformersModel._loglikelihood_tokens

    def shared_prompt_loglikelihood(self, docs, rolling=False):
        if rolling or (self.accelerator is not None and self.accelerator.num_processes > 1):
            return loglikelihood_tokens(self, docs, rolling)  # perplexity runs and several processes: LightEval's loop
        from lighteval.data import LoglikelihoodDataset
        from tqdm.auto import tqdm

        from ..cpu_decoding import fast_decoding

        dataset = LoglikelihoodDataset(requests=docs, num_dataset_splits=1)
        responses = []
        with fast_decoding(self.model):  # also for a model LightEval loaded from its folder
            for split in dataset.splits_iterator():
                for doc in tqdm(split, desc="scoring choices", leave=False, disable=self.disable_tqdm):
                    contexts, continuations = self.tok_encode_pair(self.prompt_manager.prepare_prompt(doc),
                                                                   doc.choices, pairwise=True)
                    fits = max(len(contexts[0]) + len(c) for c in continuations) <= self.max_length
                    if fits and all(c == contexts[0] for c in contexts):
                        responses.append(score_choices(self.model, contexts[0], continuations))
                    else:  # a prompt LightEval would cut, or one tokenized differently per choice
                        responses += loglikelihood_tokens(self, [doc])
        return dataset.get_original_order(responses)

    TransformersModel._loglikelihood_tokens = shared_prompt_loglikelihood


def score_choices(model, context: list, continuations: list):
    """LightEval's ModelResponse for one question: each choice's summed log-probability after `context`,
    and whether greedy decoding would produce it, from one pass over the context and one over the choices."""
    import torch
    from lighteval.models.model_output import ModelResponse
    from torch.nn.utils.rnn import pad_sequence

    device = model.device
    with torch.no_grad():
        prompt = model(torch.tensor([context], device=device), use_cache=True, logits_to_keep=1)
        first = prompt.logits[0, -1].float().log_softmax(-1)  # predicts every choice's first token
        longest = max(len(c) for c in continuations)
        rest = None
        if longest > 1:  # the choices' other tokens, all at once on copies of the prompt's cache
            cache = prompt.past_key_values
            cache.batch_repeat_interleave(len(continuations))
            pad = continuations[0][0]
            tails = torch.tensor([c[:-1] + [pad] * (longest - len(c)) for c in continuations], device=device)
            rest = model(tails, past_key_values=cache, use_cache=True).logits.float().log_softmax(-1)
    logprobs, greedy = [], []
    for i, choice in enumerate(continuations):
        steps = [first] + ([rest[i, j] for j in range(len(choice) - 1)] if rest is not None else [])
        logprobs.append(sum(step[token].item() for step, token in zip(steps, choice)))
        greedy.append(all(int(step.argmax()) == token for step, token in zip(steps, choice)))
    output_tokens = pad_sequence([torch.tensor(c) for c in continuations], batch_first=True, padding_value=-1)
    return ModelResponse(argmax_logits_eq_gold=greedy, logprobs=logprobs, input_tokens=torch.tensor(context),
                         output_tokens=output_tokens)


TESTED_VERSION = "0.13.0"
# name -> (what it replaces, as "module:Class.attribute", the function that installs it)
PATCHES = {
    "registry": ("lighteval.tasks.registry:Registry._load_from_files", _skip_broken_builtin_tasks),
    "sample_cache": ("lighteval.utils.cache_management:SampleCache.__init__", _keep_sample_cache_in_cache_dir),
    "shared_prompt_scoring": ("lighteval.models.transformers.transformers_model:TransformersModel._loglikelihood_tokens",
                              _score_choices_on_a_shared_prompt),
}
installed: set = set()


def _exists(target: str) -> bool:
    module, _, path = target.partition(":")
    owner = importlib.import_module(module)
    for name in path.split("."):
        owner = getattr(owner, name, None)
    return owner is not None


def install_patches() -> set:
    """Install each patch once per process (on another LightEval release, only those whose targets exist)."""
    from importlib.metadata import version

    import torch

    found, grad_was = version("lighteval"), torch.is_grad_enabled()
    for name, (target, install) in PATCHES.items():
        if name in installed:
            continue
        if found != TESTED_VERSION and not _exists(target):
            warnings.warn(f"LightEval {found}: patch {name!r} skipped, {target} is gone (written for "
                          f"{TESTED_VERSION}); if a run fails, pip install lighteval=={TESTED_VERSION}")
            continue
        install()
        installed.add(name)
    torch.set_grad_enabled(grad_was)  # importing LightEval's transformers backend turned autograd off
    if found != TESTED_VERSION and not getattr(install_patches, "warned", False):
        install_patches.warned = True
        warnings.warn(f"helpers.evaluation.lighteval_compat was written for LightEval {TESTED_VERSION}, "
                      f"this is {found}: check its PATCHES are still needed")
    return installed


@contextmanager
def session():
    """LightEval with the patches installed, and the process-wide state it changes put back on exit."""
    import torch

    forget_training_precision()
    try:
        install_patches()
        yield
    finally:
        # on, not "as before": any earlier import of LightEval's backend (a custom-tasks file does it) turned it off
        torch.set_grad_enabled(True)
        forget_training_precision()  # a later Trainer must not inherit LightEval's Accelerator settings


def lighteval_magic(line: str) -> None:
    """`%lighteval accelerate MODEL_ARGS TASKS [options]` in a notebook: the `lighteval` command, typed as
    in a terminal, run with this module's patches in a subprocess (`python -m helpers.evaluation.lighteval_compat`).
    Its results table is printed; a failure stops the notebook with LightEval's own last lines."""
    import shlex
    import subprocess

    finished = subprocess.run([sys.executable, "-m", __name__, *shlex.split(line)], capture_output=True, text=True)
    table = finished.stdout[finished.stdout.find("|"):] if "|" in finished.stdout else finished.stdout
    print(table.strip()[-3000:])
    if finished.returncode != 0:
        raise RuntimeError(f"lighteval exited with status {finished.returncode}:\n{finished.stderr[-3000:]}")


def register_magic() -> None:
    """Make `%lighteval ...` available in this IPython kernel (a no-op outside IPython)."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.register_magic_function(lighteval_magic, "line", "lighteval")


def main(argv=None) -> None:
    """`lighteval` with the patches: `python -m helpers.evaluation.lighteval_compat accelerate MODEL TASKS ...`."""
    for variable in OFFLINE_VARIABLES:
        os.environ.setdefault(variable, "1")  # before LightEval imports the Hub libraries, which read it once
    with session():
        from lighteval.__main__ import app

        app(args=list(sys.argv[1:] if argv is None else argv), prog_name="lighteval")


if __name__ == "__main__":
    main()
