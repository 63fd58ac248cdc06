"""`make test` runs pytest in two processes (pytest-xdist, `--dist loadscope`); the root conftest.py keeps
the lessons in one of them, in order, since lesson 05 evaluates what lessons 02 and 03 trained, and starts
the Hub batch in the other at once, the two longest units side by side, the next longest after it."""
from helpers.course import COURSE_ROOT

STAND_IN = "def test_{n}():\n    pass\n"  # xdist's -v lines say which worker ran it


def run_in_two_processes(pytester, passed: int):
    """The stand-in modules run as make test runs them, with the course's conftest.py; every one passed."""
    pytester.makeconftest((COURSE_ROOT / "conftest.py").read_text())
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadscope", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=passed)
    return result


def test_the_lessons_run_in_one_process_and_in_order(pytester):
    for folder in ("notebooks", "tests"):  # stand-ins: test modules where the lessons and the tests live
        pytester.mkdir(folder)
        for n in range(4):
            (pytester.path / folder / f"test_{folder}_{n}.py").write_text(STAND_IN.format(n=n))
    result = run_in_two_processes(pytester, passed=8)
    lines = [line for line in result.stdout.lines if " PASSED notebooks/" in line]
    assert len(lines) == 4 and len({line.split()[0] for line in lines}) == 1, lines  # one worker: [gw0] or [gw1]
    assert [line.split("::")[0].split("/")[-1] for line in lines] == [f"test_notebooks_{n}.py" for n in range(4)]
    workers = {line.split()[0] for line in result.stdout.lines if " PASSED tests/" in line}
    assert workers <= {"[gw0]", "[gw1]"} and workers


def test_the_hub_batch_starts_first_beside_the_lessons(pytester):
    pytester.mkdir("notebooks")
    pytester.mkdir("tests")
    pytester.mkdir("tests/course")
    for n in range(3):
        (pytester.path / "notebooks" / f"test_lesson_{n}.py").write_text(STAND_IN.format(n=n))
    for n in range(4):  # loadscope alone starts the modules with most tests first: these, not the Hub batch
        (pytester.path / "tests" / f"test_many_{n}.py").write_text("".join(STAND_IN.format(n=f"{n}_{i}") for i in range(3)))
    (pytester.path / "tests" / "course" / "test_hub_profile.py").write_text(STAND_IN.format(n="hub"))
    (pytester.path / "tests" / "course" / "test_colab_simulation.py").write_text(STAND_IN.format(n="colab"))
    result = run_in_two_processes(pytester, passed=17)
    lessons_worker = next(line.split()[0] for line in result.stdout.lines if " PASSED notebooks/" in line)
    other = [line for line in result.stdout.lines if " PASSED " in line and not line.startswith(lessons_worker)]
    assert "tests/course/test_hub_profile.py" in other[0], other
    assert "tests/course/test_colab_simulation.py" in other[1], other  # the third longest next, not after the lessons
