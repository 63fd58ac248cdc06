"""Four things for every pytest run: a solution notebook whose self-checks do not all pass fails
under nbval (a check reports instead of raising, so nbval alone would let it through); at the
end, the time each notebook took (the course's run time in CI); the notebooks nbval executed,
kept as a run folder in runs/ (`helpers.course.executed`), from which `make test` builds the website;
and, when pytest-xdist runs the tests in several processes (`make test`), which tests share one."""
import tempfile
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


LESSONS = "notebooks (the lessons, in order)"
# The longest units start first, the two longest one in each process, then the units named below in their order,
# and the short ones fill in around them:
# begun last (loadscope orders by number of tests, and the Hub batch is one test), the Hub batch ran alone for
# its last 6 minutes. Measured in make test on 2 cores (EPYC, one thread each, 126195c): lessons 21.8 min, Hub
# batch 12.3 min, then the lessons without 4-bit 3.3 min, the Colab simulation 3.0 min and the untouched
# exercises 2.2 min, which began last (the no-4-bit lessons ran alone for their last 2.3 minutes). The no-4-bit
# lessons are now part of the Hub batch (it runs with COURSE_NO_4BIT=1). The untouched exercises come after two
# more units: their exercise 04 needs the style adapters lesson 04 trains into the shared cache, and begun
# right after the Colab simulation it waited 64 s on the cache's lock while lesson 04 trained them (499bc95).
STARTED_FIRST = (LESSONS, "tests/course/test_hub_profile.py", "tests/course/test_colab_simulation.py",
                 "tests/test_training.py", "solutions/02_supervised_fine_tuning_exercises.ipynb",
                 "tests/exercises/test_notebooks.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under `pytest -n N --dist loadscope` (make test), what one process runs in order: each test module or
    notebook on its own (a module's tests share its fixtures, a notebook's cells one kernel), as loadscope
    does, but the lessons together, 00 to 05 (lesson 05 evaluates what 02 and 03 trained). xdist's own
    way to say this, `--dist loadgroup` with marks, groups nothing under pytest 9.2 (pytest-xdist #1386)."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LessonsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::")[0]
            return LESSONS if path.startswith("notebooks/") else path

        def _assign_work_unit(self, node):
            for scope in reversed(STARTED_FIRST):  # the rest as loadscope orders them (most tests first)
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LessonsTogether(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist, in the controller: the folder where each worker leaves the notebooks it executed."""
    if not hasattr(node.config, "_course_parts"):
        node.config._course_parts = tempfile.mkdtemp(prefix="course-nbval-")
    node.workerinput["course_parts"] = node.config._course_parts


def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: its share, for the controller's run folder
        _executed.save(Path(config.workerinput["course_parts"]))
        return
    if hasattr(config, "_course_parts"):
        _executed.load(Path(config._course_parts))
    config._course_run_dir = _executed.write()


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
