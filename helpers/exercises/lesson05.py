"""The exercises of lesson 05 (evaluation): their data and their self-checks."""
import math
import re
from types import ModuleType

from .checks import Hint, exercise_check, refusing

GSM8K_CASES = [  # (reply, reference, expected)
    ("Each box holds 12, so 3 boxes hold 36.\n#### 36", "... #### 36", True),
    ("She earns $1,250 in total.", "... #### 1250", True),
    ("The answer is 18.", "... #### 18", True),
    ("First 4 + 5 = 9, then 9 * 2 = 18 apples.", "... #### 18", True),
    ("#### 7.0", "... #### 7", True),
    ("It is 18, or maybe 19.", "... #### 18", False),
    ("I cannot solve this.", "... #### 4", False),
    ("#### 41", "... #### 14", False),
]
JUDGE_PAIRS = [  # (question, reference, a correct answer, a wrong answer)
    ("Is water wet? Answer Yes or No.", "Yes", "Yes", "No"),
    ("What is 3 + 4? Answer with the number.", "7", "7", "12"),
    ("Name the capital of France.", "Paris", "Paris", "London"),
    ("Which is a mammal: shark or dolphin?", "dolphin", "dolphin", "shark"),
    ("How many legs does a spider have?", "8", "8", "6"),
    ("What colour is a ripe banana?", "yellow", "yellow", "blue"),
]


def mmlu_data(subject: str) -> str:
    """A folder holding one MMLU subject in the layout LightEval reads (written once)."""
    from pathlib import Path

    from ..evaluation.lighteval_tasks import write_mmlu
    from ..assets import cache_dir

    folder = Path(cache_dir()) / "exercise-data" / f"mmlu-{subject}"
    if not (folder / "README.md").exists():
        write_mmlu(folder, [subject])
    return str(folder)


@exercise_check("Exercise 1 (a new MMLU subject as a LightEval task)")
def check_mmlu_task(config, subject, model_path):
    from lighteval.tasks.lighteval_task import LightevalTaskConfig

    from ..evaluation.lighteval_runs import results_table, run_lighteval

    if not isinstance(config, LightevalTaskConfig):
        raise Hint(f"give a LightevalTaskConfig, got {type(config).__name__}")
    if config.hf_subset != subject:
        raise Hint(f"hf_subset is {config.hf_subset!r}: it names the subject's config in the data folder, {subject!r}")
    if config.evaluation_splits != ["test"] and list(config.evaluation_splits) != ["test"]:
        raise Hint("evaluate on the 'test' split (the 'dev' split holds the five few-shot examples)")
    module = ModuleType("exercise_tasks")
    module.TASKS_TABLE = [config]
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        run = run_lighteval(f"{config.name}|0", model_path, out, max_samples=5, batch_size=5, tasks_module=module)
        table = results_table(run.get_results())
    if table.empty or table.metric.iloc[0] != "acc":
        raise Hint(f"the task ran but reported {table.metric.tolist()}: use metrics=[Metrics.loglikelihood_acc]")
    return f"correct: {config.name} ran on 5 questions, accuracy {table.value.iloc[0]:.2f} +/- {table.stderr.iloc[0]:.2f}"


@exercise_check("Exercise 2 (score GSM8K answers)")
def check_gsm8k_match(gsm8k_match):
    from ..evaluation import scoring

    with refusing(scoring.gsm8k_correct, scoring.final_number,
                  why="helpers.evaluation.scoring already scores GSM8K: write the matching yourself"):
        answers = [gsm8k_match(reply, reference) for reply, reference, _ in GSM8K_CASES]
    for (reply, reference, expected), got in zip(GSM8K_CASES, answers):
        if bool(got) != expected:
            raise Hint(f"gsm8k_match({reply!r}, {reference!r}) gave {got}, expected {expected}: take the number "
                       "after '####' if there is one, else the last number; drop commas and a trailing '.0'")
    return f"correct: all {len(GSM8K_CASES)} cases"


@exercise_check("Exercise 3 (standard error by hand)")
def check_standard_error(stderr, questions_needed):
    from lighteval.metrics.utils.stderr import mean_stderr

    from ..evaluation import scoring

    cases = ([1, 0, 1, 1, 0], [0] * 7 + [1] * 3, [0.5, 0.25, 1.0, 0.0])
    with refusing(scoring.standard_error, mean_stderr, why="that function computes the standard error for you: "
                  "write it by hand from the scores"):
        answers = [stderr(scores) for scores in cases]
    for scores, got in zip(cases, answers):
        if not math.isclose(got, mean_stderr(scores), rel_tol=1e-9):
            raise Hint(f"stderr({scores}) gave {got:.4f}, LightEval gives {mean_stderr(scores):.4f}: "
                       "divide the sample standard deviation (n - 1 in its denominator) by sqrt(n)")
    half = lambda n: mean_stderr([1] * (n // 2) + [0] * (n - n // 2))  # noqa: E731
    smallest = next(n for n in range(4, 10_000, 2) if half(n) <= 0.05)
    if questions_needed != smallest:
        raise Hint(f"with {questions_needed} questions at accuracy 0.5 the standard error is "
                   f"{half(int(questions_needed)):.4f}; find the smallest even n where it is at most 0.05")
    return f"correct: {smallest} questions bring the standard error of a 50% accuracy down to 0.05"


@exercise_check("Exercise 4 (a judge rubric and its position bias)")
def check_position_bias(rubric, bias, model, tokenizer):
    from ..evaluation.judge import compare, position_bias

    if not isinstance(rubric, str) or len(rubric.split()) < 8:
        raise Hint("write a rubric of at least one sentence: what makes one answer better than the other?")
    words = set(re.findall(r"[a-z]+", rubric.lower()))
    if not words & {"correct", "correctly", "accurate", "right", "true", "reference", "agrees", "matches", "wrong"}:
        raise Hint("a rubric must say what makes an answer better, and here that is being right: ask the judge to "
                   "compare each answer with the reference answer (say 'correct' or 'reference')")
    verdicts = [compare(model, tokenizer, q, right, wrong, reference=ref, rubric=rubric)
                for q, ref, right, wrong in JUDGE_PAIRS]
    expected = position_bias(verdicts)
    if not math.isclose(float(bias), expected):
        raise Hint(f"with your rubric the judge picked the same position in {expected:.0%} of the pairs, not "
                   f"{float(bias):.0%}: judge each pair twice with judge.compare and count 'inconsistent' winners")
    right = sum(v["winner"] == "first" for v in verdicts)
    return f"correct: position bias {expected:.0%}; the judge found the right answer in {right} of {len(verdicts)} pairs"


HELD_OUT = 48  # exercise 5 scores the same held-out questions as lessons 02 and 03


def held_out_questions() -> list:
    """The held-out conversations exercise 5 scores (each with its `references`)."""
    from ..data import load_chat_dataset
    from ..evaluation import held_out_questions

    return held_out_questions(load_chat_dataset("offline")["test"], HELD_OUT)


def your_adapter() -> str:
    """The adapter exercise 6 of lesson 03 saved here (the newest), else lesson 03's own, else the course's
    recipe of it (trained once, about a minute)."""
    from ..recipes import lora_adapter, newest_output
    from .lesson03 import ADAPTER_RUN

    yours = newest_output(ADAPTER_RUN.rsplit("/", 1)[-1], "adapter_model.safetensors")
    if yours:
        print(f"your adapter from lesson 03's exercise 6: {yours}")
        return str(yours)
    print("no adapter from lesson 03's exercise 6 in outputs/ here: using lesson 03's LoRA adapter instead")
    return lora_adapter()


@exercise_check("Exercise 5 (evaluate your own adapter)")
def check_own_adapter(before, after, stderr, beyond_noise, adapter_dir, model_source):
    from peft import PeftModel

    from ..evaluation import score_held_out
    from ..models import load_model

    questions = held_out_questions()
    for name, table in (("before", before), ("after", after)):
        if not hasattr(table, "correct") or len(table) != len(questions):
            raise Hint(f"{name} must be the table evaluation.score_held_out returns for the {len(questions)} "
                       "held-out questions")
    differences = after.correct.to_numpy(float) - before.correct.to_numpy(float)  # the same questions: pair them
    paired = float(differences.std(ddof=1) / math.sqrt(len(differences)))
    unpaired = math.sqrt(sum(t.correct.var(ddof=1) / len(t) for t in (before, after)))
    if math.isclose(float(stderr), unpaired, rel_tol=1e-6) and not math.isclose(unpaired, paired, rel_tol=1e-6):
        raise Hint(f"{stderr:.4f} treats the two runs as independent samples; both answered the same questions, "
                   "so take the standard error of the per-question differences (after - before)")
    if not math.isclose(float(stderr), paired, rel_tol=1e-6):
        raise Hint(f"the standard error of the difference is {paired:.4f}, not {float(stderr):.4f}: the sample "
                   "standard deviation (n - 1) of after - before, per question, divided by sqrt(n)")
    gain = float(differences.mean())
    if bool(beyond_noise) != (gain > 2 * paired):
        raise Hint(f"the gain is {gain:+.2f} and twice its standard error {2 * paired:.2f}: is the gain larger?")
    model, tokenizer = load_model(model_source)  # the reference scores, computed here at check time
    reference = {"before": score_held_out(model, tokenizer, questions).correct.mean()}
    reference["after"] = score_held_out(PeftModel.from_pretrained(model, adapter_dir), tokenizer, questions).correct.mean()
    for name, table in (("before", before), ("after", after)):
        if abs(table.correct.mean() - reference[name]) > 1.5 / len(questions):  # a question may flip with batching
            which = "the base model" if name == "before" else f"the base model with the adapter in {adapter_dir}"
            raise Hint(f"{name} scores {table.correct.mean():.2f}, but {which} scores {reference[name]:.2f} here")
    return (f"correct: {reference['before']:.2f} -> {reference['after']:.2f}, a gain of {gain:+.2f} +/- {paired:.2f} "
            f"(paired): {'beyond' if beyond_noise else 'within'} the noise of {len(questions)} questions")
