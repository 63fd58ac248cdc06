"""At the end of every pytest run, the time each notebook took under nbval (the course's run time in CI)."""
from collections import defaultdict

_seconds = defaultdict(float)


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
