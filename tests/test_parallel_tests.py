"""`make test` runs pytest in two processes (pytest-xdist, `--dist loadscope`); the root conftest.py keeps
the lessons in one of them, in order, since lesson 05 evaluates what lessons 02 and 03 trained."""
from helpers.course import COURSE_ROOT

STAND_IN = "def test_{n}():\n    pass\n"  # xdist's -v lines say which worker ran it


def test_the_lessons_run_in_one_process_and_in_order(pytester):
    for folder in ("notebooks", "tests"):  # stand-ins: test modules where the lessons and the tests live
        pytester.mkdir(folder)
        for n in range(4):
            (pytester.path / folder / f"test_{folder}_{n}.py").write_text(STAND_IN.format(n=n))
    pytester.makeconftest((COURSE_ROOT / "conftest.py").read_text())
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadscope", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    lines = [line for line in result.stdout.lines if " PASSED notebooks/" in line]
    assert len(lines) == 4 and len({line.split()[0] for line in lines}) == 1, lines  # one worker: [gw0] or [gw1]
    assert [line.split("::")[0].split("/")[-1] for line in lines] == [f"test_notebooks_{n}.py" for n in range(4)]
    workers = {line.split()[0] for line in result.stdout.lines if " PASSED tests/" in line}
    assert workers <= {"[gw0]", "[gw1]"} and workers
