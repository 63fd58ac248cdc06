"""The Makefile's malloc: tcmalloc preloaded into what runs notebooks, where the system has it."""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def make_shows(text, *overrides):
    """What make expands `text` to, in a make run with the learner's environment minus any preload."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "TCMALLOC", "MAKEFLAGS", "MAKELEVEL")}
    shown = subprocess.run(["make", "-s", "--eval", f"show: ; @echo {text}", "show", *overrides],
                           cwd=ROOT, capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def makes_environment():
    """The variables `make course`, `make test` and `make lab` set for the notebooks' processes."""
    assigned = dict(word.split("=", 1) for word in shlex.split(make_shows("'$(WITH_TCMALLOC)'")))
    return {**assigned, "GLIBC_TUNABLES": make_shows("$$GLIBC_TUNABLES")}


def plain_environment():
    """This environment without make's malloc settings, nor the make that runs the tests (`make test`)."""
    dropped = ("LD_PRELOAD", "GLIBC_TUNABLES", "TCMALLOC", "MAKEFLAGS", "MAKELEVEL")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("TCMALLOC_")}


@pytest.mark.parametrize("target", ["course", "test", "lab", "course-times"])
def test_make_preloads_tcmalloc_keeping_freed_memory_for_the_commands_that_run_notebooks(target):
    dry_run = subprocess.run(["make", "-n", target, "TCMALLOC=/opt/tc/libtcmalloc_minimal.so.4"], cwd=ROOT,
                             capture_output=True, text=True, env=plain_environment())
    line = next(line for line in dry_run.stdout.splitlines()
                if any(command in line for command in ("-m helpers run", "-m pytest", "jupyter lab", "course_times.py")))
    assert 'LD_PRELOAD="/opt/tc/libtcmalloc_minimal.so.4"' in line and "TCMALLOC_RELEASE_RATE=0" in line, line
    without = subprocess.run(["make", "-n", target, "TCMALLOC="], cwd=ROOT, capture_output=True, text=True,
                             env=plain_environment())
    assert "LD_PRELOAD" not in without.stdout and "TCMALLOC_RELEASE_RATE" not in without.stdout


def test_a_preload_of_the_learners_own_is_kept_after_tcmalloc():
    shown = make_shows("'$(WITH_TCMALLOC)'", "TCMALLOC=/opt/tc.so", "LD_PRELOAD=/opt/mine.so")
    assert 'LD_PRELOAD="/opt/tc.so /opt/mine.so"' in shown.replace("'", '"')


MAPPED = "import sys; print(any('libtcmalloc' in line for line in open('/proc/self/maps')))"


def test_the_notebooks_python_runs_on_the_tcmalloc_make_finds_or_on_glibc_without_one():
    env = makes_environment()
    found = make_shows("$(TCMALLOC)")
    probe = subprocess.run([sys.executable, "-c", MAPPED], capture_output=True, text=True,
                           env={**plain_environment(), **env})
    assert probe.returncode == 0 and not probe.stderr, probe.stderr  # a missing library would print an error here
    assert probe.stdout.strip() == str(bool(found)), (found, probe.stdout)
    assert bool(found) == ("LD_PRELOAD" in env)


TRAIN = """
import hashlib, json, tempfile
from trl import SFTConfig, SFTTrainer
import helpers
from helpers import data, templates, training
model, tokenizer = helpers.load_model("offline")
tokenizer.chat_template = templates.training_template()
args = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-4,
                 max_length=256, assistant_only_loss=True, activation_checkpointing=False, logging_steps=1,
                 save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
                 **helpers.detect_hardware().trainer_precision())
trainer = training.use_trained_token_loss_on_cpu(SFTTrainer(
    model=model, args=args, train_dataset=data.load_chat_dataset()["train"].select(range(12)), processing_class=tokenizer))
trainer.train()
weights = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
print(json.dumps({"losses": [h["loss"] for h in trainer.state.log_history if "loss" in h], "weights": weights}))
"""


@pytest.mark.slow
def test_the_makefiles_malloc_settings_change_no_number_training_computes():
    """Three steps of the course's SFT path, in a process with make's malloc settings (tcmalloc where found, the
    glibc tunables) and in one without any: the same losses and weights, to the last bit."""
    def trained(env):
        finished = subprocess.run([sys.executable, "-c", TRAIN], cwd=ROOT, capture_output=True, text=True, env=env,
                                  timeout=600)
        assert finished.returncode == 0, finished.stderr[-2000:]
        return json.loads(finished.stdout.strip().splitlines()[-1])

    with_make = trained({**plain_environment(), **makes_environment()})
    without = trained(plain_environment())
    assert len(with_make["losses"]) == 3 and with_make == without, (with_make, without)
