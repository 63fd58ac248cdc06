"""Sweeps: a grid of notebook runs as one job, each run in its own folder, resumable."""
import csv
import json
import subprocess
import sys

import pytest

from helpers.course import sweep


def test_a_grid_expands_to_every_combination():
    grid = sweep.parse_grid([("lora_r", "4,8"), ("learning_rate", "1e-4, 1e-3")])
    assert grid == {"lora_r": [4, 8], "learning_rate": [0.0001, 0.001]}
    points = sweep.grid_points(grid)
    assert len(points) == 4 and {"lora_r": 8, "learning_rate": 0.001} in points
    assert sweep.point_name(points[0]) == "lora_r=4-learning_rate=0.0001"


@pytest.mark.parametrize("pairs, message", [
    ([], "at least one --grid"),
    ([("lora_r", ",")], "has no values"),
    ([("lora_r", "4"), ("lora_r", "8")], "given twice"),
])
def test_a_bad_grid_says_how_to_write_it(pairs, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_grid(pairs)


@pytest.mark.slow  # executes notebooks or a real model
def test_a_failed_point_is_reported_and_a_rerun_resumes_only_what_did_not_finish(tmp_path, make_notebook):
    notebook = make_notebook(tmp_path / "01_toy.ipynb",
                             "import helpers, pathlib\n"
                             "if steps == 3 and not pathlib.Path('../fixed').exists():\n"
                             "    raise ValueError('step 3 is broken')\n"
                             "helpers.record_metrics(loss=1 / steps)")
    job = tmp_path / "runs" / "job"
    _, rows = sweep.run_sweep(notebook, {"steps": [1, 2, 3]}, job_dir=job)
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"] and "step 3 is broken" in rows[2]["error"]
    (job / "fixed").touch()
    _, rows = sweep.run_sweep(notebook, {"steps": [1, 2, 3]}, job_dir=job)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert [r["folder"] for r in rows] == ["steps=1", "steps=2", "steps=3-attempt2"]  # 1 and 2 were not re-run
    assert json.loads((job / "steps=3" / "result.json").read_text())["status"] == "failed"  # the failure is kept
    summary = list(csv.DictReader(open(job / "summary.csv")))
    assert [(r["steps"], r["status"], r["loss"]) for r in summary] == [("1", "ok", "1.0"), ("2", "ok", "0.5"),
                                                                       ("3", "ok", "0.333333")]
    assert list(summary[0])[0] == "steps" and (job / "sweep.png").stat().st_size > 5000


def test_a_job_folder_holding_another_sweep_is_refused(tmp_path, make_notebook):
    notebook = make_notebook(tmp_path / "01_toy.ipynb", "x = steps")
    sweep.run_sweep(notebook, {"steps": [1]}, job_dir=tmp_path / "job")
    with pytest.raises(ValueError, match="another --job name"):
        sweep.run_sweep(notebook, {"steps": [1, 2]}, job_dir=tmp_path / "job")


def test_a_sweep_too_big_for_the_disk_is_refused_before_its_job_folder_exists(tmp_path, make_notebook, monkeypatch):
    from types import SimpleNamespace

    from helpers.course import runner

    notebook = make_notebook(tmp_path / "01_toy.ipynb", "x = steps")
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda path: SimpleNamespace(free=int(1.6e9)))
    with pytest.raises(ValueError, match=r"running 3 notebook\(s\) needs about 1\.8 GB"):  # 1 GB + 3 x 0.25 GB
        sweep.run_sweep(notebook, {"steps": [1, 2, 3]}, job_dir=tmp_path / "job")
    assert not (tmp_path / "job").exists()


@pytest.mark.slow  # executes notebooks or a real model
def test_a_real_lesson_sweep_of_three_runs_writes_its_tables_and_resumes(tmp_path):
    # Lesson 00 with the real model (15 s a run): a lesson-02 learning-rate sweep works the same way
    # but takes 13 minutes, too long for CI's budget.
    command = [sys.executable, "-m", "helpers", "sweep", "00", "-g", "max_new_tokens", "8,16,32",
               "--runs-dir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    job = tmp_path / "sweep-00-max_new_tokens"
    rows = list(csv.DictReader(open(job / "summary.csv")))
    assert [(r["max_new_tokens"], r["status"]) for r in rows] == [("8", "ok"), ("16", "ok"), ("32", "ok")]
    assert all(float(r["generation_tokens_per_second"]) > 0 for r in rows)
    assert (job / "sweep.png").exists() and "| 32 |" in (job / "summary.md").read_text()
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0 and rerun.stdout.count("finished earlier, kept") == 3
