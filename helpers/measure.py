"""Measuring what a cell costs: the process's peak memory while a block runs, and sizes on disk."""
import sys
import threading
from pathlib import Path


class PeakMemory:
    """The largest resident memory (RSS) while the `with` block runs, in GB: of this process, or with
    `children=True` of its child processes (a notebook kernel started by the batch runner).

    RSS counts everything a process holds (Python, libraries, every model still alive), so free
    earlier models before measuring one run against another. With `device="cuda"` it measures what
    matters there instead: the GPU memory torch allocates (`torch.cuda.max_memory_allocated`), not
    host RAM. `what` says which of the two the numbers are.
    """

    def __init__(self, interval: float = 0.1, children: bool = False, device: str = "cpu"):
        self.interval, self.children, self.start_gb, self.peak_gb = interval, children, 0.0, 0.0
        self.on_gpu = device == "cuda"
        self.what = "GPU memory" if self.on_gpu else "RAM"
        self._stop = threading.Event()

    def _resident_gb(self, process) -> float:
        import psutil

        if not self.children:
            return process.memory_info().rss / 2**30
        total = 0
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass  # a child that just exited
        return total / 2**30

    def _sample(self, process):
        while not self._stop.wait(self.interval):
            self.peak_gb = max(self.peak_gb, self._resident_gb(process))

    def __enter__(self):
        if self.on_gpu:
            import torch
            torch.cuda.reset_peak_memory_stats()
            self.start_gb = self.peak_gb = torch.cuda.memory_allocated() / 2**30
            return self
        import psutil

        process = psutil.Process()
        self.start_gb = self.peak_gb = self._resident_gb(process)
        self._thread = threading.Thread(target=self._sample, args=(process,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.on_gpu:
            import torch
            self.peak_gb = torch.cuda.max_memory_allocated() / 2**30
            return
        self._stop.set()
        self._thread.join()

    def __repr__(self):
        return f"{self.what}: peak {self.peak_gb:.2f} GB (held {self.start_gb:.2f} GB before)"


def in_fresh_process(function, *args, env: dict | None = None):
    """`function(*args)` run in a new Python process, its result returned: a measurement that
    inherits no heap, threads or library state from the ones before it. `function` must be importable
    (defined at the top of a module), as must its arguments and result. `env` sets variables (None
    removes one) in the new process only, for settings read when a process starts."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    kept = {name: os.environ.get(name) for name in env or {}}
    _set_environment(env or {})  # a spawned process starts with this process's environment
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as fresh:
            return fresh.submit(function, *args).result()
    finally:
        _set_environment(kept)


def _set_environment(values: dict) -> None:
    import os

    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def size_on_disk(path) -> int:
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: save the model or adapter there first")
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def megabytes(n_bytes: int) -> float:
    return round(n_bytes / 2**20, 1)


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the system, so the next measurement starts clean.

    glibc keeps freed memory in its heap, so the process's RSS stays high after a model is deleted;
    `malloc_trim(0)` returns it. Elsewhere (macOS, musl) only the garbage collection runs.
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


GPU_PEAK_FILE = "COURSE_GPU_PEAK_FILE"  # set by the batch runner for each notebook's kernel


def write_gpu_peak_after_each_cell(path) -> None:
    """After every cell of this IPython kernel, write the GPU memory torch has allocated at its
    peak so far (`torch.cuda.max_memory_allocated`, GB) to `path`, once CUDA is in use.

    The batch runner sets `COURSE_GPU_PEAK_FILE` for each notebook it runs and `import helpers` calls
    this, so a run on a GPU reports the GPU peak per notebook beside the host RAM it measures itself.
    The kernel is fresh per notebook, so the peak is the notebook's own. The largest value seen after
    any cell is kept: a cell that resets torch's peak (`PeakMemory(device="cuda")`, lesson 03) must not
    lower it. Nothing is written without CUDA.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    peak = 0.0

    def write_peak(result=None):
        nonlocal peak
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            peak = max(peak, torch.cuda.max_memory_allocated() / 2**30)
            Path(path).write_text(f"{peak:.3f}\n")

    shell.events.register("post_run_cell", write_peak)


def read_gpu_peak(path) -> float | None:
    """The GB a notebook's kernel wrote with `write_gpu_peak_after_each_cell`, or None (no GPU used)."""
    text = Path(path).read_text().strip() if Path(path).is_file() else ""
    return float(text) if text else None
