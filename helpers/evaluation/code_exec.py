"""Running generated code safely enough for a course: in a separate Python process, in an empty
temporary folder, with a time limit, and never inside the notebook's own process.

This is not a sandbox against hostile code (the process can still touch files and the network
where the machine allows it); it keeps a runaway loop or a crash from taking the notebook down.
"""
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass

FENCE = re.compile(r"```(?:python)?\n(.*?)(?:```|$)", re.S)


@dataclass
class Outcome:
    passed: bool
    reason: str   # "passed", "failed: <last error line>", or "timed out after N s"


def run_python(code: str, timeout: float = 5.0) -> Outcome:
    """Run `code` with `python -I` in a fresh temporary folder; pass means exit status 0 in time."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            done = subprocess.run([sys.executable, "-I", "-c", code], cwd=folder, capture_output=True,
                                  text=True, timeout=timeout, env={"PYTHONHASHSEED": "0"})
        except subprocess.TimeoutExpired:
            return Outcome(False, f"timed out after {timeout:g} s")
    if done.returncode == 0:
        return Outcome(True, "passed")
    last = (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1]
    return Outcome(False, f"failed: {last}")


def completion_code(problem: dict, reply: str) -> str:
    """The program to test: the problem's prompt plus the model's body, or the model's whole function."""
    fenced = FENCE.findall(reply)
    code = fenced[0] if fenced else reply
    if f"def {problem['entry_point']}" in code:
        imports = "\n".join(line for line in problem["prompt"].splitlines() if line.startswith(("import", "from")))
        return imports + "\n" + code
    return problem["prompt"] + code


def humaneval_outcome(problem: dict, reply: str, timeout: float = 5.0) -> Outcome:
    """Run HumanEval's own tests on the model's reply, in a subprocess with a time limit."""
    program = f"{completion_code(problem, reply)}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
    return run_python(program, timeout)
