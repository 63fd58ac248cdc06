"""What machine are we on, and which device and dtype should a model use here?"""
import os
import platform
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Hardware:
    device: str        # "cuda", "mps" or "cpu"
    name: str          # GPU name, or the CPU's model name
    memory_gb: float   # GPU memory on a GPU, RAM on a CPU
    cpu_cores: int
    bf16: bool         # the device computes in bfloat16 natively
    fp16: bool

    @property
    def dtype(self) -> torch.dtype:
        """The dtype models load in: bf16 where the GPU supports it, fp16 on older GPUs, fp32 on CPU.

        On CPU, pure bf16 weights trained worse than fp32 in our measurements, so fp32 is the
        default there even where the CPU has bf16 instructions.
        """
        if self.device == "cuda":
            return torch.bfloat16 if self.bf16 else torch.float16
        return torch.float32

    def trainer_precision(self) -> dict:
        """Keyword arguments for `SFTConfig`/`TrainingArguments` that fit this hardware.

        `SFTConfig()` turns bf16 on by default and raises on a CPU-only machine, so the lessons
        pass these instead of hard-coding a precision. On a CPU with bf16 units (AVX512-BF16 or AMX)
        `bf16=True` means autocast: the weights and optimizer stay fp32, the matmuls run in bf16,
        which trained 1.7x faster here than fp32 (benchmarks/training_speed.py) and scored within a few
        points of fp32 on lesson 02's held-out questions (0.25 against 0.29).
        """
        on_gpu = self.device == "cuda"
        return {"bf16": self.bf16 and self.device in ("cuda", "cpu"), "fp16": on_gpu and not self.bf16,
                "use_cpu": self.device == "cpu"}

    def describe(self) -> str:
        why = {"cuda": "GPU found", "mps": "Apple GPU found; fp32 is the safe choice on MPS",
               "cpu": "no GPU found; fp32 weights, " + ("bf16 autocast in training" if self.bf16 else
                                                         "fp32 training (no bf16 units)")}[self.device]
        return (f"{self.name} ({self.device}), {self.memory_gb:.0f} GB, {self.cpu_cores} CPU cores: "
                f"models load in {str(self.dtype).removeprefix('torch.')} ({why})")


def detect_hardware() -> Hardware:
    cores = os.cpu_count() or 1
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", props.name, props.total_memory / 2**30, cores,
                        bf16=cuda_has_bf16_units(), fp16=True)
    if torch.backends.mps.is_available():
        return Hardware("mps", "Apple silicon", _ram_gb(), cores, bf16=False, fp16=True)
    return Hardware("cpu", _cpu_name(), _ram_gb(), cores, bf16=_cpu_has_bf16(), fp16=False)


def cuda_has_bf16_units() -> bool:
    """bf16 tensor cores: compute capability 8.0 (Ampere) or newer.

    Not `torch.cuda.is_bf16_supported()`: it also counts emulation, so a T4 (7.5) passes it and
    would load bf16 weights and train in slow emulated bf16, where fp16 with loss scaling runs at
    full speed.
    """
    major, _ = torch.cuda.get_device_capability(0)
    return major >= 8


def machine_kind() -> str:
    """The kind of machine a time was measured on: "gpu", "mps", "cpu-amx" (AMX bf16 units),
    "cpu-avx512-bf16" (AVX512-BF16 instructions, no AMX), "cpu-avx512", "cpu-avx2", "cpu-other", or
    "cpu-avx2-emulated" (a CPU with AVX-512 run with torch limited to AVX2, see `_cpu_has_bf16`).
    Times differ by up to 4x between the CPU kinds, and by 1.5x between the two bf16 kinds
    (`benchmarks/results/course-times-*.md`)."""
    device = detect_hardware().device
    if device != "cpu":
        return "gpu" if device == "cuda" else device
    flags = set(_cpu_flags().split())
    if "avx512f" in flags and "AVX512" not in _torch_cpu_capability():
        return "cpu-avx2-emulated"
    if _cpu_has_bf16():
        return "cpu-amx" if "amx_bf16" in flags else "cpu-avx512-bf16"
    return "cpu-avx512" if "avx512f" in flags else "cpu-avx2" if "avx2" in flags else "cpu-other"


def _ram_gb() -> float:
    import psutil
    return psutil.virtual_memory().total / 2**30


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def _cpu_has_bf16() -> bool:
    """bf16 units that torch uses. Started with ATEN_CPU_CAPABILITY=avx2 (and ONEDNN_MAX_CPU_ISA=AVX2,
    MKL_ENABLE_INSTRUCTIONS=AVX2), torch leaves them alone, and so does the course: a CPU with them
    then trains like one without (fp32), which is how the AVX2 path is measured on such a machine."""
    flags = _cpu_flags()
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and "AVX512" in _torch_cpu_capability()


def _torch_cpu_capability() -> str:
    return torch.backends.cpu.get_cpu_capability()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith("model name")), "")
        return line.split(":", 1)[1].strip() if line else platform.processor() or "CPU"
    except OSError:
        return platform.processor() or "CPU"


NO_4BIT = "COURSE_NO_4BIT"  # =1: act as a machine without 4-bit kernels (how the course tests that path)


def four_bit_problem() -> str | None:
    """Why bitsandbytes 4-bit (QLoRA) cannot run here, or None when it can."""
    if os.environ.get(NO_4BIT) == "1":
        return (f"4-bit is turned off ({NO_4BIT}=1), the course's stand-in for a machine whose bitsandbytes "
                "has no 4-bit kernels, such as an Apple or ARM one")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        return f"bitsandbytes is not installed ({e}); install the course's pinned environment"
    device = detect_hardware().device
    if device == "cuda":
        return None
    if device == "cpu" and platform.machine().lower() in ("x86_64", "amd64"):
        return None  # bitsandbytes >= 0.47 has 4-bit kernels for x86 CPUs
    return (f"bitsandbytes has no 4-bit kernels for {device} on {platform.machine()}; "
            "QLoRA needs an NVIDIA GPU or an x86 CPU")
