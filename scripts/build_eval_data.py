"""Extract the TruthfulQA multiple-choice task (299 questions) from the BIG-bench sdist.

BIG-bench (Apache-2.0) ships TruthfulQA's MC1 questions as `truthful_qa/task_mc.json`. We copy that
file unchanged (canary string included) to `helpers/eval_data/`, for evaluation only.

    python scripts/build_eval_data.py --fetch          # downloads the sdist (358 MB) from PyPI
    python scripts/build_eval_data.py path/to/bigbench-1.0.0.tar.gz
"""
import argparse
import hashlib
import tarfile
import tempfile
from pathlib import Path

from build_chat_set import fetch_sdist

MEMBER = "bigbench-1.0.0/bigbench/benchmark_tasks/truthful_qa/task_mc.json"
TARGET = Path(__file__).resolve().parent.parent / "helpers" / "eval_data" / "truthfulqa_mc.json"


def extract(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        data = tar.extractfile(MEMBER).read()
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", nargs="?", type=Path, help="bigbench-1.0.0.tar.gz")
    parser.add_argument("--fetch", action="store_true", help="download the sdist from PyPI")
    args = parser.parse_args()
    if args.fetch:
        with tempfile.TemporaryDirectory() as tmp:
            extract(fetch_sdist(Path(tmp)))
    elif args.archive:
        extract(args.archive)
    else:
        parser.error("give the path to bigbench-1.0.0.tar.gz, or --fetch")
