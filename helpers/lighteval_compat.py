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

And one for speed (not a fix): LightEval scores a multiple-choice question by running the whole
prompt once per choice and computing the 49,152-word output layer at every position. The shim
scores each question's shared prompt once, keeps its key/value cache, and runs only the choices'
own tokens on top of it, with the output layer only where a choice's token is predicted. Same
log-probabilities up to float rounding and the same answers (tests/test_lighteval.py compares it
with LightEval's own loop on real questions); MMLU letters cost one forward pass instead of four.

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
    _score_choices_on_a_shared_prompt()
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


def _score_choices_on_a_shared_prompt():
    from lighteval.models.transformers.transformers_model import TransformersModel

    loglikelihood_tokens = TransformersModel._lighteval_loglikelihood_tokens = TransformersModel._loglikelihood_tokens

    def shared_prompt_loglikelihood(self, docs, rolling=False):
        if rolling or (self.accelerator is not None and self.accelerator.num_processes > 1):
            return loglikelihood_tokens(self, docs, rolling)  # perplexity runs and several processes: LightEval's loop
        from lighteval.data import LoglikelihoodDataset
        from tqdm.auto import tqdm

        dataset = LoglikelihoodDataset(requests=docs, num_dataset_splits=1)
        responses = []
        for split in dataset.splits_iterator():
            for doc in tqdm(split, desc="scoring choices", leave=False, disable=self.disable_tqdm):
                contexts, continuations = self.tok_encode_pair(self.prompt_manager.prepare_prompt(doc), doc.choices,
                                                               pairwise=True)
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


def main(argv=None) -> None:
    """`lighteval` with the shim applied: `python -m helpers.lighteval_compat accelerate MODEL TASKS ...`."""
    apply()
    from lighteval.__main__ import app

    app(args=list(sys.argv[1:] if argv is None else argv), prog_name="lighteval")


if __name__ == "__main__":
    main()
