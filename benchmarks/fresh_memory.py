"""How fast this machine hands a process fresh memory: zeroing memory touched for the first time against
memory already mapped, and memory freed then taken again at once against after a pause.

    .venv/bin/python benchmarks/fresh_memory.py [--gb 1] [--repeats 3] [--out benchmarks/results]

Training allocates large tensors afresh every step (autocast's bf16 copies of the weights, the gradients,
Gemma 3's 671 MB embedding gradient), and the operating system clears each new page before the process
sees it. That clearing is the "system" (OS kernel) CPU time `python -m helpers run` records per notebook. On a
laptop it runs near memory speed; in a virtual machine whose host takes back the memory a guest frees
(virtio-balloon free page reporting: freed blocks are handed to the host about 2 s after they are freed) each
of those pages is faulted in from the host again, at a fraction of that speed. This script says whether this
machine reports free pages and measures the four cases, so a time measured here can be read against a machine
without that cost. About 1 minute. Writes `results/fresh-memory-<kind>.md`.
"""
import argparse
import os
import time
from datetime import date
from pathlib import Path

import torch

from helpers.hardware import machine_kind

BLOCK = 256 * 2**20  # bytes per tensor: above glibc's 32 MB mmap threshold, so each is a mapping of its own


def free_page_reporting(devices: Path = Path("/sys/bus/virtio/devices")) -> str:
    """Whether a virtio balloon device here offers free page reporting (feature bit 5)."""
    for device in devices.glob("*") if devices.exists() else []:
        if (device / "device").read_text().strip() == "0x0005":  # the virtio balloon
            features = (device / "features").read_text().strip()
            return "yes (virtio-balloon)" if len(features) > 5 and features[5] == "1" else "no (a balloon without it)"
    return "no (no virtio balloon)"


def gb_per_second(fill, gigabytes: float) -> float:
    start = time.perf_counter()
    fill()
    return gigabytes / (time.perf_counter() - start)


def allocate(gigabytes: float) -> tuple:
    """(GB/s, the blocks): `gigabytes` of new tensors, zeroed, timed."""
    blocks, count = [], int(gigabytes * 2**30 // BLOCK)
    speed = gb_per_second(lambda: blocks.extend(torch.zeros(BLOCK // 4) for _ in range(count)), gigabytes)
    return speed, blocks


def measure(gigabytes: float) -> dict:
    """GB/s for each case, one run. Each `del` frees its blocks at once: a list of tensors holds no cycles."""
    time.sleep(4)  # what an earlier run freed is reported by now: "first touch" really is
    first_touch, blocks = allocate(gigabytes)
    mapped = gb_per_second(lambda: [b.zero_() for b in blocks], gigabytes)
    del blocks
    again, blocks = allocate(gigabytes)  # the pages just freed
    del blocks
    time.sleep(4)  # past the 2 s after which a reporting guest hands freed blocks to its host
    after_pause, _ = allocate(gigabytes)
    return {"first touch of new memory": first_touch, "memory already mapped (zero_ again)": mapped,
            "freed and taken again at once": again, "freed and taken again after 4 s": after_pause}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="memory per case (default 1 GB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    runs = [measure(args.gb) for _ in range(args.repeats)]
    reporting = free_page_reporting()
    lines = [f"# Fresh memory on {machine_kind()}", "",
             f"- date: {date.today().isoformat()}, {os.cpu_count()} cores, {args.gb:g} GB per case, "
             f"{args.repeats} runs (torch {torch.get_num_threads()} threads)",
             f"- GLIBC_TUNABLES: {os.environ.get('GLIBC_TUNABLES', 'none')}",
             f"- free page reporting to a hypervisor: {reporting}", "",
             "| case | GB/s, each run | best |", "|---|---|---|"]
    for case in runs[0]:
        speeds = [run[case] for run in runs]
        lines.append(f"| {case} | {', '.join(f'{s:.1f}' for s in speeds)} | {max(speeds):.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fresh-memory-{machine_kind()}.md").write_text(text)


if __name__ == "__main__":
    main()
