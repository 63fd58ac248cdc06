"""The grade command on a small class: lesson 01's exercises handed in many ways, and lesson 05's known tricks, executed for real."""
import csv
import subprocess
import sys

import nbformat
import pytest

from helpers.course import COURSE_ROOT, grading

pytestmark = pytest.mark.slow  # every test here loads the real model or runs notebooks

ROOT = COURSE_ROOT
EXERCISE = ROOT / "exercises" / "01_chat_templates_exercises.ipynb"
SOLUTION = ROOT / "solutions" / "01_chat_templates_exercises.ipynb"
WRONG_ANSWERS = {  # the TODO line of each exercise -> a wrong answer
    "messages = ...": 'messages = [{"role": "user", "content": "Where is the treasure?"}]',
    "fixed = ...": "fixed = broken",
    "my_template = ...": 'my_template = "{% for m in messages %}{{ m.content }}{% endfor %}"',
    "n_trained = ...": "n_trained = 3",
}


# Exercise 2 asks to fix a conversation; moving the user's words into the system message makes a valid one
SYSTEM_TRICK = [{"role": "system", "content": "Answer briefly. Name a primary colour. Another one? Not red."},
                {"role": "user", "content": "Go on."}, {"role": "assistant", "content": "Red."},
                {"role": "user", "content": "And?"}, {"role": "assistant", "content": "Blue."}]

RUN_TIME_SWAPS = {
    "kim": 'vars(lesson01)["check_pirate_messages"] = {fake}',
    "lee": 'getattr(lesson01, "__dict__").update(check_pirate_messages={fake})',
    "max": "lesson01.check_pirate_messages.__closure__[0].cell_contents = lambda *answers: 'correct'",
}


def handed_in(path, replace=None, edit_check=None, first_check=None, exercise=EXERCISE):
    """The exercise notebook with some TODO lines answered (or a check cell edited), saved as a student's.
    `first_check`: "markdown" turns exercise 1's check cell into Markdown, "delete" deletes it."""
    notebook = nbformat.read(exercise, as_version=4)
    for cell in notebook.cells:
        for todo, answer in (replace or {}).items():
            if cell.source.startswith(todo):
                cell.source = answer
        if edit_check and grading.is_check_cell(cell.source) and "pirate" in cell.source:
            cell.source = edit_check
    first = next(c for c in notebook.cells if c.cell_type == "code" and grading.is_check_cell(c.source))
    if first_check == "markdown":
        notebook.cells[notebook.cells.index(first)] = nbformat.v4.new_markdown_cell(first.source, id=first.id)
    elif first_check == "delete":
        notebook.cells.remove(first)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


# Lesson 05's known ways around: the helper that is exercise 2's answer, and a rubric that says nothing
LESSON05_TRICKS = {
    "gsm8k_match = ...": "from helpers.evaluation import scoring\n"
                         "gsm8k_match = lambda reply, ref: scoring.final_number(reply) == scoring.final_number(ref)",
    "rubric = ...": 'rubric = "one two three four five six seven eight"\nbias = 0.0',
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, offline_model):  # the model converted first: in a fresh cache that takes over 20 s
    from helpers import recipes

    recipes.lora_adapter()  # lesson 05's exercise 5 reads lesson 03's adapter: trained once, not within a cell's 20 s
    root = tmp_path_factory.mktemp("class")
    submissions = root / "submissions"
    submissions.mkdir()
    (submissions / "ada.ipynb").write_text(SOLUTION.read_text())                 # all correct
    handed_in(submissions / "ben.ipynb", WRONG_ANSWERS)                          # all wrong
    handed_in(submissions / "cy" / "01_chat_templates_exercises.ipynb")           # nothing done, own folder
    handed_in(submissions / "dee.ipynb", {"messages = ...": "import os\nos._exit(1)"})         # kills the kernel
    handed_in(submissions / "eve.ipynb", {"fixed = ...": "import time\ntime.sleep(600)"})     # hangs
    handed_in(submissions / "fay.ipynb", edit_check='print("✅ Exercise 1: correct")')        # edits a check
    handed_in(submissions / "gus.ipynb", {"messages = ...": "lesson01.check_pirate_messages = lambda m: 'passed'\n"
                                                             "messages = None"})            # replaces a check
    fake = "lambda *answers: report('Exercise 1 (write the messages)', 'passed', 'correct')"
    for student, swap in RUN_TIME_SWAPS.items():  # a passing result faked three ways the source text hides
        handed_in(submissions / f"{student}.ipynb", {"messages = ...": "from helpers.exercises.checks import report\n"
                                                     + swap.format(fake=fake) + "\nmessages = None"})
    handed_in(submissions / "kai.ipynb", {"fixed = ...": f"fixed = {SYSTEM_TRICK!r}"})  # 01-2's known way around
    handed_in(submissions / "lou.ipynb", LESSON05_TRICKS, exercise=ROOT / "exercises" / "05_evaluation_exercises.ipynb")
    handed_in(submissions / "hal.ipynb", first_check="markdown")                 # a check cell turned into Markdown
    handed_in(submissions / "ivy.ipynb", first_check="delete")                   # a check cell deleted
    (submissions / "jo.ipynb").write_text('{"cells": [')                         # a file cut short
    before = {p: p.read_bytes() for p in submissions.rglob("*.ipynb")}
    result = subprocess.run([sys.executable, "-m", "helpers", "grade", str(submissions), "--out", str(root / "grades"),
                             "--timeout", "20", "--jobs", "2"], capture_output=True, text=True, cwd=root)
    return root, result, before


def results(graded, student):
    root = graded[0]
    return {r["exercise"]: r for r in csv.DictReader(open(root / "grades" / "grades.csv")) if r["student"] == student}


def test_grading_finishes_and_writes_both_tables(graded):
    root, result, _ = graded
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = list(csv.DictReader(open(root / "grades" / "grades.csv")))
    assert {r["student"] for r in rows} == {"ada", "ben", "cy", "dee", "eve", "fay", "gus", "hal", "ivy", "jo", "kai",
                                            "lou", *RUN_TIME_SWAPS}
    assert len(rows) == 13 * 4 + 1 + 5 and "| ada | 01_chat_templates_exercises | Exercise 1 | passed |" in \
        (root / "grades" / "grades.md").read_text()
    assert "TCP without encryption" not in result.stderr  # the kernels talk over local sockets


def test_correct_wrong_and_unfinished_are_told_apart_with_hints(graded):
    assert {e: r["result"] for e, r in results(graded, "ada").items()} == {f"Exercise {i}": "passed" for i in range(1, 5)}
    ben = results(graded, "ben")
    assert {r["result"] for r in ben.values()} == {"failed"} and all(r["hint"] for r in ben.values())
    assert "assistant" in ben["Exercise 1"]["hint"]  # the hint names what is missing (the reply)
    assert {r["result"] for r in results(graded, "cy").values()} == {"not done"}
    kai = results(graded, "kai")  # known ways around the checks: graded as failed, with the reason
    assert kai["Exercise 2"]["result"] == "failed" and "must stay in user messages" in kai["Exercise 2"]["hint"]
    lou = results(graded, "lou")
    assert lou["Exercise 2"]["result"] == "failed" and "write the matching yourself" in lou["Exercise 2"]["hint"]
    assert lou["Exercise 4"]["result"] == "failed" and "compare each answer with the reference" in lou["Exercise 4"]["hint"]
    assert {lou[f"Exercise {n}"]["result"] for n in (1, 3, 5)} == {"not done"}


def test_a_crash_and_a_hang_are_reported_and_do_not_stop_the_batch(graded):
    dee = results(graded, "dee")
    assert dee["Exercise 1"]["notebook_status"].startswith("crashed")
    assert {r["result"] for r in dee.values()} == {"not run"}
    eve = results(graded, "eve")
    assert eve["Exercise 2"]["result"] == "timed out" and eve["Exercise 1"]["result"] == "not done"
    assert eve["Exercise 3"]["result"] == "not done"  # the cells after the hang still ran


def test_tampering_is_reported_and_the_real_check_decides(graded):
    fay = results(graded, "fay")
    assert "check cell" in fay["Exercise 1"]["notebook_status"] and "edited" in fay["Exercise 1"]["notebook_status"]
    assert fay["Exercise 1"]["result"] == "not done"  # the restored check ran on the untouched answer
    gus = results(graded, "gus")
    assert "replaces a helpers function" in gus["Exercise 1"]["notebook_status"]


def test_a_helpers_function_replaced_at_run_time_is_caught_however_it_was_written(graded):
    gus = results(graded, "gus")  # lesson01.check_pirate_messages = lambda m: 'passed'
    assert gus["Exercise 1"]["result"] == "tampered"
    for student in RUN_TIME_SWAPS:  # invisible to a reading of the source: its fake check reports "passed"
        rows = results(graded, student)
        assert rows["Exercise 1"]["result"] == "tampered", (student, rows["Exercise 1"])
        assert "exercises.lesson01.check_pirate_messages" in rows["Exercise 1"]["hint"]
        assert "replaced at run time" in rows["Exercise 1"]["notebook_status"]
    ada = results(graded, "ada")  # the grader's own cells find nothing to report in a clean notebook
    assert {r["result"] for r in ada.values()} == {"passed"} and ada["Exercise 1"]["notebook_status"] == "ok"


def test_a_check_cell_deleted_or_turned_into_markdown_is_put_back_and_reported(graded):
    for student, what in (("hal", "turned into markdown"), ("ivy", "deleted")):
        rows = results(graded, student)
        assert what in rows["Exercise 1"]["notebook_status"], rows["Exercise 1"]
        assert {r["result"] for r in rows.values()} == {"not done"}  # the restored checks ran, on untouched answers


def test_an_unreadable_file_gets_a_row_and_the_others_are_graded(graded):
    jo = results(graded, "jo")
    assert list(jo) == ["-"] and jo["-"]["result"] == "unreadable"


def test_points_give_one_row_per_student_for_an_lms(graded):
    root = graded[0]
    points = {r["student"]: r for r in csv.DictReader(open(root / "grades" / "points.csv"))}
    assert len(points) == 15 and points["ada"]["total"] == "4" and points["ada"]["out of"] == "9"  # 01's four, 05's five
    assert points["ben"]["total"] == "0" and points["jo"]["total"] == "0"
    assert points["ada"]["01_chat_templates_exercises Exercise 2"] == "1"


def test_an_interrupted_batch_resumes_and_keeps_what_it_had_graded(tmp_path, offline_model):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    (submissions / "ada.ipynb").write_text(SOLUTION.read_text())
    handed_in(submissions / "ben.ipynb", WRONG_ANSWERS)
    out = tmp_path / "grades"
    earlier = [{"student": "ada", "file": str(submissions / "ada.ipynb"), "notebook": "01_chat_templates_exercises",
                "exercise": f"Exercise {n}", "result": "passed", "hint": "graded before the interruption",
                "notebook_status": "ok", "seconds": 9} for n in range(1, 5)]
    grading.append_progress(out, str(submissions / "ada.ipynb"), earlier)
    with open(out / grading.PROGRESS, "a") as f:
        f.write('{"file": "half a line')  # the line being written when the batch was stopped
    rows = grading.grade(submissions, out, timeout=60)
    assert [r["hint"] for r in rows if r["student"] == "ada"] == ["graded before the interruption"] * 4
    assert {r["result"] for r in rows if r["student"] == "ben"} == {"failed"}
    assert (out / "grades.csv").exists() and (out / "points.csv").exists()


def test_students_files_are_never_modified_and_grades_never_overwritten(graded):
    root, _, before = graded
    assert all(path.read_bytes() == content for path, content in before.items())
    again = subprocess.run([sys.executable, "-m", "helpers", "grade", str(root / "submissions"),
                            "--out", str(root / "grades")], capture_output=True, text=True)
    assert again.returncode == 2 and "already holds grades" in again.stderr


def test_an_empty_folder_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="one notebook per student"):
        grading.grade(tmp_path, tmp_path / "out")


def test_parallel_grading_gives_each_kernel_its_share_of_the_cores(monkeypatch):
    # N kernels each starting a thread per core fight over the cores (two trainings at once on 2 cores
    # took longer than one after the other): a worker's kernels get cores // N threads, unless the
    # instructor set the variables already.
    import os

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "unset")  # records the value to put back, absent included; delenv alone
        monkeypatch.delenv(name)           # records nothing for an absent variable, and the test's value leaked
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    grading._share_the_cores(2)
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "2"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    grading._share_the_cores(8)
    assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["MKL_NUM_THREADS"] == "2"
    monkeypatch.delenv("MKL_NUM_THREADS")
    grading._share_the_cores(8)
    assert os.environ["MKL_NUM_THREADS"] == "1"
