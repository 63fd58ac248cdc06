"""Three things for every pytest run: a solution notebook whose self-checks do not all pass fails
under nbval (a check reports instead of raising, so nbval alone would let it through); at the
end, the time each notebook took (the course's run time in CI); and the notebooks nbval executed,
kept as a run folder in runs/ (`helpers.course.executed`), from which `make test` builds the website."""
from collections import defaultdict
from pathlib import Path

import pytest

from helpers.course.executed import NbvalCapture

_seconds = defaultdict(float)
_executed = NbvalCapture()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if call.when == "call" and report.passed and "solutions" in Path(str(item.fspath)).parts:
        _fail_unpassed_checks(item, report)
    _executed.cell_done(item, report)


def _fail_unpassed_checks(item, report):
    from helpers.exercises.checks import MIME, PASSED, SKIPPED

    results = [out["data"][MIME] for out in getattr(item, "test_outputs", None) or [] if MIME in out.get("data", {})]
    unpassed = [f"{r['exercise']}: {r['status']}: {r['message']}" for r in results if r["status"] not in (PASSED, SKIPPED)]
    if unpassed:
        report.outcome = "failed"
        report.longrepr = "a solution's check did not pass:\n" + "\n".join(unpassed)


def pytest_runtest_logreport(report):
    _seconds[report.nodeid.split("::")[0]] += report.duration  # setup, call and teardown of every cell


def pytest_sessionfinish(session):
    session.config._course_run_dir = _executed.write()


def pytest_terminal_summary(terminalreporter):
    run_dir = getattr(terminalreporter.config, "_course_run_dir", None)
    if run_dir:
        terminalreporter.section("executed notebooks")
        terminalreporter.write_line(f"kept in {run_dir} (`make site` builds the website from them)")
    notebooks = {path: seconds for path, seconds in _seconds.items() if path.endswith(".ipynb")}
    if not notebooks:
        return
    terminalreporter.section("time per notebook")
    for path, seconds in notebooks.items():
        terminalreporter.write_line(f"{seconds / 60:6.1f} min {seconds:8.1f} s  {path}")
    total = sum(notebooks.values())
    terminalreporter.write_line(f"{total / 60:6.1f} min {total:8.1f} s  all notebooks")
