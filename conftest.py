"""Two things for every pytest run: a solution notebook whose self-checks do not all pass fails
under nbval (a check reports instead of raising, so nbval alone would let it through), and at the
end, the time each notebook took (the course's run time in CI)."""
from collections import defaultdict
from pathlib import Path

import pytest

_seconds = defaultdict(float)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if call.when != "call" or not report.passed or "solutions" not in Path(str(item.fspath)).parts:
        return
    from helpers.exercises.checks import MIME, PASSED, SKIPPED

    results = [out["data"][MIME] for out in getattr(item, "test_outputs", None) or [] if MIME in out.get("data", {})]
    unpassed = [f"{r['exercise']}: {r['status']}: {r['message']}" for r in results if r["status"] not in (PASSED, SKIPPED)]
    if unpassed:
        report.outcome = "failed"
        report.longrepr = "a solution's check did not pass:\n" + "\n".join(unpassed)


def pytest_runtest_logreport(report):
    _seconds[report.nodeid.split("::")[0]] += report.duration  # setup, call and teardown of every cell


def pytest_terminal_summary(terminalreporter):
    notebooks = {path: seconds for path, seconds in _seconds.items() if path.endswith(".ipynb")}
    if not notebooks:
        return
    terminalreporter.section("time per notebook")
    for path, seconds in notebooks.items():
        terminalreporter.write_line(f"{seconds / 60:6.1f} min {seconds:8.1f} s  {path}")
    total = sum(notebooks.values())
    terminalreporter.write_line(f"{total / 60:6.1f} min {total:8.1f} s  all notebooks")
