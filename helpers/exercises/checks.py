"""Self-checks for the exercises: a clear pass, "not done yet", or a specific hint; never a traceback.

Each check shows one line for the learner and stores a machine-readable result in the cell's
output, which the grading command reads.
"""
import functools
import json
from contextlib import contextmanager

MIME = "application/vnd.fine-tuning-course.check+json"
PASSED, FAILED, NOT_DONE, SKIPPED = "passed", "failed", "not done", "skipped"
SYMBOL = {PASSED: "✅", FAILED: "❌", NOT_DONE: "⏳", SKIPPED: "➖"}


class Hint(Exception):
    """Raised inside a check to say what is wrong with an answer."""


class Skip(Exception):
    """Raised inside a check that cannot run on this machine (QLoRA without 4-bit kernels): says why."""


def report(exercise: str, status: str, message: str) -> str:
    line = f"{SYMBOL[status]} {exercise}: {message}"
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display({MIME: {"exercise": exercise, "status": status, "message": message}, "text/plain": line},
                raw=True)
    else:
        print(line)
    return status


def exercise_check(name: str):
    """Turn `fn(answer) -> success message` into a check that reports instead of raising."""
    def decorate(fn):
        @functools.wraps(fn)
        def check(*answers):
            if any(_unfinished(a) for a in answers):
                return report(name, NOT_DONE, "not done yet: replace the ... with your answer and run the cell again")
            try:
                return report(name, PASSED, fn(*answers) or "correct")
            except Hint as hint:
                return report(name, FAILED, str(hint))
            except Skip as why:
                return report(name, SKIPPED, f"skipped on this machine: {why}")
            except Exception as e:  # a broken answer must produce a hint, not a traceback
                return report(name, FAILED, f"your answer raised {type(e).__name__}: {e}")
        return check
    return decorate


def _unfinished(answer) -> bool:
    """An answer still holding the exercise's `...` placeholder, itself or inside a dict or list."""
    if answer is ...:
        return True
    values = answer.values() if isinstance(answer, dict) else answer if isinstance(answer, (list, tuple)) else ()
    return any(value is ... for value in values)


def read_checks(notebook_path) -> list:
    """The check results stored in an executed notebook, in order."""
    with open(notebook_path) as f:
        notebook = json.load(f)
    return [output["data"][MIME] for cell in notebook.get("cells", [])
            for output in cell.get("outputs", []) if MIME in output.get("data", {})]


_refusals: list = []  # the reason of each `refusing` block now open, innermost last


def refusal() -> Hint:
    return Hint(_refusals[-1] if _refusals else "a check's reference function was called")


def _refused_call(*args, **kwargs):  # runs as a swapped-in body, with another module's globals: builtins only
    raise __import__("helpers.exercises.checks", fromlist=["refusal"]).refusal()


@contextmanager
def refusing(*functions, why: str):
    """While a learner's answer runs inside a check, a call of any of these functions (the check's own
    references, or a helper that is the answer) raises Hint(why), however the learner imported it: their
    code is swapped for one that refuses, and put back afterwards."""
    swapped = [(f, f.__code__) for f in functions if not f.__code__.co_freevars]  # a closure cannot take the swap
    _refusals.append(why)
    try:
        for function, _ in swapped:
            function.__code__ = _refused_call.__code__
        yield
    finally:
        for function, code in swapped:
            function.__code__ = code
        _refusals.pop()
