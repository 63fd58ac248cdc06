"""Extract the TruthfulQA multiple-choice task (299 questions) from the BIG-bench sdist.

BIG-bench (Apache-2.0) ships TruthfulQA's MC1 questions as `truthful_qa/task_mc.json`. We copy that
file unchanged (canary string included) to `helpers/evaluation/eval_data/`, for evaluation only.

    python scripts/build_eval_data.py --fetch          # downloads the sdist (358 MB) from PyPI
    python scripts/build_eval_data.py path/to/bigbench-1.0.0.tar.gz
"""
import hashlib
import tarfile
from pathlib import Path

from build_chat_set import with_sdist

MEMBER = "bigbench-1.0.0/bigbench/benchmark_tasks/truthful_qa/task_mc.json"
TARGET = Path(__file__).resolve().parent.parent / "helpers" / "evaluation" / "eval_data" / "truthfulqa_mc.json"


def extract(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        data = tar.extractfile(MEMBER).read()
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]})")


if __name__ == "__main__":
    with_sdist(extract, __doc__.split("\n\n")[0])
