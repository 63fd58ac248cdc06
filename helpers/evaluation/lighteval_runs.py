"""Running LightEval from Python on the course's local tasks, and reading its results as tables."""
from contextlib import nullcontext
from pathlib import Path

TASKS_FILE = Path(__file__).with_name("lighteval_tasks.py")  # also importable as "helpers.evaluation.lighteval_tasks"


def model_config(model_path: str, batch_size: int = 16, cache_dir=None, chat_template: bool | None = None):
    """LightEval's TransformersModelConfig for a local model on this machine's device (CPU by default here).
    `chat_template=False` turns LightEval's chat formatting off (None: on when the tokenizer has a template)."""
    from lighteval.models.transformers.transformers_model import TransformersModelConfig

    from ..hardware import detect_hardware

    hardware = detect_hardware()
    return TransformersModelConfig(
        model_name=str(model_path),           # was `pretrained=` in the chapter
        device=hardware.device,                # LightEval's default is "cuda", even on a CPU-only machine
        batch_size=batch_size,                 # left out, LightEval probes for one and stalls for minutes on a CPU;
                                               # for multiple choice LightEval takes batch / choices questions, rounded
                                               # to a multiple of 8, at least 1: 16 -> 1 question, 32 -> 8 questions,
                                               # which runs out of memory on long MMLU prompts (49k-word logits)
        dtype="float32" if hardware.device == "cpu" else "bfloat16",
        **({"override_chat_template": chat_template} if chat_template is not None else {}),
        **({"cache_dir": str(cache_dir)} if cache_dir else {}),
    )


def uses_chat_template(tasks: str) -> bool | None:
    """False for a run of the course's pre-rendered tasks (their queries are chat prompts already), None
    (LightEval decides) for any other; a run that mixes both would format one kind wrongly, so it raises."""
    from .lighteval_tasks import PRE_RENDERED

    names = [task.split("|")[0] for task in tasks.split(",")]
    pre_rendered = [name in PRE_RENDERED for name in names]
    if any(pre_rendered) and not all(pre_rendered):
        raise ValueError(f"{', '.join(sorted(PRE_RENDERED))} must run on its own (its prompts are already in the "
                         f"chat template, the other tasks' are not): split {tasks!r} into two runs")
    return False if any(pre_rendered) else None


def run_lighteval(tasks: str, model, output_dir, max_samples: int | None = None, batch_size: int = 16,
                  tasks_module=None):
    """Evaluate one model on LightEval task strings ("course_mmlu_letter:anatomy|0,..."), return the pipeline.

    `model` is a saved model's folder, or a transformers model in memory (for example a PEFT model
    that is not merged), whose config names the folder of its tokenizer. `tasks_module` replaces the
    course's custom-tasks file with a module of your own (its TASKS_TABLE). Every run gets its own
    sample cache, because LightEval keys the cache by the config, not the weights: a re-trained model
    saved at the same path would otherwise report the old scores.
    """
    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters

    from ..cpu_decoding import fast_decoding
    from .lighteval_compat import session

    in_memory = not isinstance(model, (str, Path))
    folder = model.config._name_or_path if in_memory else model  # a PEFT model's config is its base model's
    output_dir = Path(output_dir)
    with session():
        pipeline = Pipeline(
            tasks=tasks,
            pipeline_parameters=PipelineParameters(launcher_type=ParallelismManager.ACCELERATE,
                                                   custom_tasks_directory=tasks_module or str(TASKS_FILE),
                                                   max_samples=max_samples),
            evaluation_tracker=EvaluationTracker(output_dir=str(output_dir), save_details=True),
            model_config=model_config(folder, batch_size, cache_dir=output_dir / "sample-cache",
                                      chat_template=uses_chat_template(tasks)),
            model=model if in_memory else None,  # LightEval wraps a model in memory with the config's tokenizer
        )
        with fast_decoding(model) if in_memory else nullcontext():
            pipeline.evaluate()
        pipeline.save_and_push_results()
    return pipeline


def results_table(results: dict):
    """LightEval's results dict as a DataFrame: one row per task and metric, with value and stderr."""
    import pandas as pd

    rows = []
    for task, scores in results["results"].items():
        if task == "all":
            continue
        for metric, value in scores.items():
            if not metric.endswith("_stderr"):
                rows.append({"task": task, "metric": metric, "value": value,
                             "stderr": scores.get(f"{metric}_stderr")})
    return pd.DataFrame(rows)


def details_table(pipeline, task: str):
    """The per-question details of one task: the prompt, the gold answer, the prediction, the score."""
    import pandas as pd

    details = pipeline.get_details()
    if task not in details:
        raise ValueError(f"no details for {task!r}; tasks in this run: {sorted(details)}")
    rows = []
    for detail in details[task]:
        doc, response, metric = detail.doc, detail.model_response, detail.metric
        rows.append({"question": doc.query[-120:], "gold": [doc.choices[i] for i in _as_list(doc.gold_index)],
                     "prediction": _prediction(doc, response), **metric})
    return pd.DataFrame(rows)


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _prediction(doc, response):
    if response.text and any(response.text):
        return response.text[0]
    if response.logprobs:
        best = max(range(len(response.logprobs)), key=lambda i: response.logprobs[i])
        return doc.choices[best]
    return None


def saved_results(output_dir) -> dict:
    """The newest results file LightEval wrote under `output_dir` (for example by `lighteval accelerate
    --output-dir output_dir`), as the dict `results_table` reads."""
    import json

    files = sorted(Path(output_dir).glob("results/**/results_*.json"), key=lambda path: path.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no LightEval results_*.json under {output_dir}/results: run LightEval "
                                f"with --output-dir {output_dir} first")
    return json.loads(files[-1].read_text())


def held_out_replies(pipeline, rows, task: str = "course_held_out|0"):
    """A run's replies on the course's held-out task, in the form `evaluation.score_held_out` returns
    (task, question, expected, reply, correct), for each of `rows` (the held-out conversations) that
    the run scored, indexed by its position in `rows`: with `max_samples` LightEval scores a sample of
    the questions, not the first ones (`evaluation.held_out_questions` picks the same ones). `correct` is
    LightEval's exact match (normalised, as the lessons score)."""
    import pandas as pd

    from .replies import chat_prompt, prompt_of, question_of

    details = {detail.doc.query: detail for detail in pipeline.get_details()[task]}
    questions = {i: chat_prompt(prompt_of(row["messages"])) for i, row in enumerate(rows)}  # the task's queries
    scored = [i for i, question in questions.items() if question in details]
    if len(scored) < len(details):
        raise ValueError(f"{len(details) - len(scored)} of the {len(details)} questions this run of {task} "
                         f"scored are not among the {len(rows)} conversations given: pass every held-out row")
    hits = [details[questions[i]] for i in scored]
    return pd.DataFrame({
        "task": [rows[i]["task"] for i in scored],
        "question": [question_of(rows[i]["messages"]) for i in scored],
        "expected": [rows[i]["references"][0] for i in scored],
        "reply": [_prediction(hit.doc, hit.model_response) for hit in hits],
        "correct": [bool(hit.metric["em"]) for hit in hits],
    }, index=scored)
