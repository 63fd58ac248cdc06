"""The `colab-t4` profile's Hub path, run on a CPU without the Hub: a local Hugging Face cache
(`helpers.course.local_hub`) serves its model names and dataset, and the lessons run under it.

What this proves: the Hub names, `from_pretrained` / `load_dataset` through the Hub libraries'
offline resolution, and every lesson's code under the profile. What it does not: the stand-ins are
the offline 135M model and the course's own conversations, on a CPU, so no GPU speed, GPU memory or
smoltalk result is measured here.

The batch runs with `COURSE_NO_4BIT=1`, as on a machine whose bitsandbytes has no 4-bit kernels (Apple
silicon, ARM), so the same run proves that path too: lessons 03 and 04 say what they skip and why and
record no 4-bit metric. Their 4-bit cells run in the `cpu` lessons (the same code: on a CPU a Hub name
and the offline model differ only in where the weights are read from); a T4's CUDA 4-bit kernels cannot
run here under any profile.
"""
import csv
import os
import subprocess
import sys

import pytest

from helpers.course import COURSE_ROOT, local_hub

pytestmark = pytest.mark.slow  # loads the real model, executes notebooks

# The lessons' own parameters, cut so that the six run in a few minutes on 2 CPU cores; each notebook
# takes the ones it has. Lesson 04 asserts its style effect only under the profile's own recipe.
SHORT = {"max_steps": 4, "base_sft_steps": 2, "batch_size": 4, "max_length": 256, "eval_samples": 16,
         "mmlu_samples": 2, "truthfulqa_samples": 4, "gsm8k_samples": 2, "humaneval_samples": 2,  # two: a standard error needs two scores
         "benchmark_new_tokens": 16}  # lesson 05's GSM8K and HumanEval replies: their code path, not their score
# All six in one batch, as a learner runs them: lesson 05 evaluates what 02 and 03 trained. Fewer for a
# quick look: COURSE_HUB_LESSONS="00 01" .venv/bin/python -m pytest tests/course/test_hub_profile.py
NOTEBOOKS = COURSE_ROOT / "notebooks"
LESSONS = os.environ.get("COURSE_HUB_LESSONS", "00 01 02 03 04 05").split()


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory):
    env = local_hub.build(tmp_path_factory.mktemp("hf-home"))
    return {**os.environ, **env}


def run_python(code: str, env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_the_profiles_hub_names_load_from_the_local_cache_only(hub_env, tmp_path):
    code = """
import helpers
cfg = helpers.settings("colab-t4")
model, tokenizer = helpers.load_model(cfg.model_source)
base, base_tokenizer = helpers.load_model(cfg.base_model_source)
data = helpers.load_chat_dataset(cfg.dataset_source, cfg.dataset_config)
print("template", tokenizer.chat_template is not None, base_tokenizer.chat_template is None)
print("rows", data["train"].num_rows, data["test"].num_rows, data["train"].column_names)
print("reply", helpers.chat(model, tokenizer, "Name the planet we live on.", max_new_tokens=12))
print("file", helpers.model_file(cfg.model_source).is_file())
"""
    result = run_python(code, hub_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "template True True" in result.stdout  # the base stand-in has no chat template, as a base model
    assert "rows 300 100 ['messages']" in result.stdout and "Earth" in result.stdout
    assert "file True" in result.stdout  # helpers.model_file finds a Hub model's weights in the cache
    empty = {**hub_env, "HF_HOME": str(tmp_path / "empty")}  # the same code with nothing cached fails offline
    assert run_python(code, empty).returncode != 0


def test_every_lesson_runs_under_colab_t4_on_the_local_hub_and_without_4bit(hub_env, tmp_path):
    from helpers.course import runner

    known = set().union(*(runner.notebook_parameters(next(NOTEBOOKS.glob(f"{n}_*.ipynb"))) for n in LESSONS))
    overrides = [arg for name, value in SHORT.items() if name in known for arg in ("-p", name, str(value))]
    # one batch, as `make course` runs it: a lesson 05 in it evaluates what 02 and 03 trained under this profile
    result = subprocess.run([sys.executable, "-m", "helpers", "run", "--profile", "colab-t4", *LESSONS, *overrides,
                             "--runs-dir", str(tmp_path)], capture_output=True, text=True,
                            env={**hub_env, "COURSE_NO_4BIT": "1"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    rows = list(csv.DictReader(open(run_dir / "summary.csv")))
    assert [(r["notebook"][:2], r["status"]) for r in rows] == [(lesson, "ok") for lesson in LESSONS], rows
    # each lesson's effect on held-out conversations of the data it trained on: their reply loss
    # (the lessons assert it themselves only under the profile's own recipe; lesson 05 always)
    metrics = {r["notebook"][:2]: {k: float(v) for k, v in r.items() if ("held_out_loss" in k or "held-out loss" in k) and v}
               for r in rows}
    if "02" in LESSONS:
        assert metrics["02"]["held_out_loss_after"] < metrics["02"]["held_out_loss_before"], metrics["02"]
    if "03" in LESSONS:
        assert metrics["03"]["LoRA held-out loss"] < metrics["03"]["held_out_loss_before"], metrics["03"]
    if {"02", "05"} <= set(LESSONS):  # lesson 05 scores lesson 02's model as lesson 02 did
        assert metrics["05"]["SFT (lesson 02) held-out loss"] == pytest.approx(metrics["02"]["held_out_loss_after"], abs=2e-4)
    summary = {r["notebook"][:2]: r for r in rows}
    executed = {path.name[:2]: path.read_text() for path in run_dir.glob("0*.ipynb")}  # each notebook, read once
    for lesson in {"01", "02", "03"} & set(LESSONS):  # the profile's Hub name, loaded from the local cache
        assert "Loaded HuggingFaceTB/SmolLM2-135M-Instruct" in executed[lesson], lesson
    if "03" in LESSONS:  # without 4-bit kernels: QLoRA says why it is skipped and records nothing
        assert not any(value for name, value in summary["03"].items() if name.startswith("QLoRA")), summary["03"]
        assert "QLoRA skipped: 4-bit is turned off (COURSE_NO_4BIT=1)" in executed["03"]
    if "04" in LESSONS:  # nor does the 4-bit merge pitfall, which needs a 4-bit model
        assert not summary["04"].get("four_bit_merge_top_token_agreement"), summary["04"]  # None: not measured
        assert "skipped: 4-bit is turned off" in executed["04"] and "not measured on this machine" in executed["04"]
