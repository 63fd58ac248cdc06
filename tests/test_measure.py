import mmap
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import hardware
from helpers.measure import PeakMemory, megabytes, size_on_disk

ROOT = Path(__file__).resolve().parents[1]


def test_peak_memory_sees_a_temporary_allocation():
    with PeakMemory(interval=0.01) as memory:
        # A fresh anonymous mapping, every page written: new resident memory even when the heap
        # already holds freed memory from earlier tests (a malloc'd block could reuse that).
        block = mmap.mmap(-1, 300 * 2**20)
        np.frombuffer(block, dtype=np.uint8)[:] = 1
        deadline = time.monotonic() + 10  # on a loaded machine the sampling thread may run late
        while memory.peak_gb - memory.start_gb < 0.2 and time.monotonic() < deadline:
            time.sleep(0.01)
        block.close()
    assert memory.peak_gb - memory.start_gb > 0.2
    assert "peak" in repr(memory)


def test_size_on_disk_counts_a_folder_and_names_a_missing_path(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 2**20)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"x" * 2**20)
    assert size_on_disk(tmp_path) == 2 * 2**20 and megabytes(size_on_disk(tmp_path)) == 2.0
    with pytest.raises(FileNotFoundError, match="save the model or adapter there first"):
        size_on_disk(tmp_path / "missing")


def test_four_bit_runs_on_x86_cpus_and_gpus_and_explains_other_machines(monkeypatch):
    cpu, gpu = (hardware.Hardware("cpu", "a CPU", 16, 2, bf16=False, fp16=False),
                hardware.Hardware("cuda", "Tesla T4", 15, 2, bf16=False, fp16=True))
    for device, machine, runs in ((cpu, "x86_64", True), (cpu, "arm64", False), (gpu, "x86_64", True)):
        monkeypatch.setattr(hardware, "detect_hardware", lambda: device)
        monkeypatch.setattr(hardware.platform, "machine", lambda: machine)
        problem = hardware.four_bit_problem()
        assert problem is None if runs else "x86 CPU" in problem


def test_in_fresh_process_runs_elsewhere_and_returns_the_result():
    import os

    from helpers.measure import in_fresh_process

    assert in_fresh_process(os.getpid) != os.getpid()
    assert in_fresh_process(divmod, 7, 2) == (3, 1)


def test_in_fresh_process_sets_variables_in_the_new_process_only(monkeypatch):
    import os

    from helpers.measure import in_fresh_process

    monkeypatch.setenv("COURSE_TEST_KEPT", "parent")
    monkeypatch.delenv("COURSE_TEST_NEW", raising=False)
    env = {"COURSE_TEST_KEPT": None, "COURSE_TEST_NEW": "child"}
    assert in_fresh_process(os.getenv, "COURSE_TEST_NEW", env=env) == "child"
    assert in_fresh_process(os.getenv, "COURSE_TEST_KEPT", env=env) is None  # removed there
    assert os.environ["COURSE_TEST_KEPT"] == "parent" and "COURSE_TEST_NEW" not in os.environ  # put back here


def test_on_a_gpu_peak_memory_is_the_gpus_not_host_ram(monkeypatch):
    # mocked CUDA allocator: lesson 03's full / LoRA / QLoRA table must compare GPU memory on a GPU
    import torch
    allocated = {"now": 1 * 2**30, "peak": 0}
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: allocated.update(peak=allocated["now"]))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: allocated["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: allocated["peak"])
    with PeakMemory(device="cuda") as memory:
        allocated["peak"] = 3 * 2**30  # what training allocated on the card at its peak
    assert (memory.start_gb, memory.peak_gb, memory.what) == (1.0, 3.0, "GPU memory")
    assert repr(memory).startswith("GPU memory: peak 3.00 GB")
    assert PeakMemory().what == "RAM"


def test_4bit_can_be_turned_off_to_test_the_machines_without_it(monkeypatch):
    monkeypatch.setenv(hardware.NO_4BIT, "1")
    assert "turned off (COURSE_NO_4BIT=1)" in hardware.four_bit_problem()
    monkeypatch.setenv(hardware.NO_4BIT, "0")
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(hardware, "detect_hardware", lambda: hardware.Hardware("cpu", "a CPU", 16, 2, False, False))
    assert hardware.four_bit_problem() is None


def test_the_fresh_memory_benchmark_reads_whether_freed_pages_go_to_a_hypervisor(tmp_path):
    """A virtio balloon (device 0x0005) with feature bit 5 reports free pages; without the bit, or without a
    balloon, it does not."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fresh_memory", ROOT / "benchmarks" / "fresh_memory.py")
    fresh_memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh_memory)

    def device(name, kind, features):
        (tmp_path / name).mkdir()
        (tmp_path / name / "device").write_text(kind + "\n")
        (tmp_path / name / "features").write_text(features + "\n")

    device("virtio0", "0x0002", "1" * 64)  # a block device: its bit 5 means something else
    assert fresh_memory.free_page_reporting(tmp_path) == "no (no virtio balloon)"
    device("virtio1", "0x0005", "0110010100" + "0" * 54)
    assert fresh_memory.free_page_reporting(tmp_path).startswith("yes")
    (tmp_path / "virtio1" / "features").write_text("0110000100" + "0" * 54)
    assert fresh_memory.free_page_reporting(tmp_path).startswith("no (a balloon without it)")
    assert fresh_memory.free_page_reporting(tmp_path / "absent") == "no (no virtio balloon)"
