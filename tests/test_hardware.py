import pytest
import torch
from trl import SFTConfig

import helpers
from helpers.hardware import Hardware


def test_the_detected_hardware_is_what_torch_sees():
    hardware = helpers.detect_hardware()
    if torch.cuda.is_available():
        assert hardware.device == "cuda" and hardware.dtype in (torch.bfloat16, torch.float16)
    else:
        assert hardware.device == "cpu" and hardware.dtype == torch.float32
        assert "no GPU found" in hardware.describe()
    assert hardware.cpu_cores >= 1 and hardware.memory_gb > 1


@pytest.mark.parametrize("bf16_units", [True, False])
def test_cpu_precision_lets_sftconfig_build(tmp_path, bf16_units):
    # SFTConfig() turns bf16 on by default and raises on a CPU-only machine; ours must not. On a CPU
    # with bf16 units, bf16 means autocast (fp32 weights), which SFTConfig accepts with use_cpu.
    cpu = Hardware("cpu", "Xeon", 24, 2, bf16=bf16_units, fp16=False)
    assert cpu.trainer_precision() == {"bf16": bf16_units, "fp16": False, "use_cpu": True}
    assert cpu.dtype == torch.float32
    config = SFTConfig(output_dir=str(tmp_path), **cpu.trainer_precision())
    assert config.bf16 == bf16_units and config.use_cpu
    assert ("bf16 autocast" in cpu.describe()) == bf16_units


def test_gpus_get_bf16_where_supported_and_fp16_otherwise():
    a100 = Hardware("cuda", "A100", 40, 8, bf16=True, fp16=True)
    t4 = Hardware("cuda", "Tesla T4", 15, 2, bf16=False, fp16=True)
    assert a100.dtype == torch.bfloat16 and a100.trainer_precision()["bf16"]
    assert t4.dtype == torch.float16 and t4.trainer_precision() == {"bf16": False, "fp16": True, "use_cpu": False}
    assert helpers.recommend_profile(a100) == "gpu"
    assert helpers.recommend_profile(t4) == "colab-t4"
    assert helpers.recommend_profile(Hardware("cpu", "Xeon", 24, 2, bf16=True, fp16=False)) == "cpu"


@pytest.mark.parametrize("flags, kind", [("fpu avx2 amx_bf16 avx512f", "cpu-amx"), ("avx2 avx512f avx512_bf16", "cpu-avx512-bf16"),
                                         ("avx2 avx512f", "cpu-avx512"), ("sse4_2 avx2 fma", "cpu-avx2"), ("neon", "cpu-other")])
def test_machine_kind_names_the_cpus_bf16_and_vector_units(monkeypatch, flags, kind):
    from helpers import hardware

    monkeypatch.setattr(hardware, "_cpu_flags", lambda: f"flags\t\t: {flags}\n")
    monkeypatch.setattr(hardware, "_torch_cpu_capability", lambda: "AVX512" if "avx512f" in flags else "AVX2")
    assert hardware.machine_kind() == kind


def test_torch_limited_to_avx2_makes_a_bf16_cpu_train_in_fp32_and_says_so():
    import subprocess
    import sys

    code = ("from helpers import hardware; h = hardware.detect_hardware(); "
            "print(h.bf16, h.trainer_precision()['bf16'], hardware.machine_kind())")
    limited = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**__import__("os").environ, "ATEN_CPU_CAPABILITY": "avx2"})
    assert limited.stdout.split()[:2] == ["False", "False"], limited.stderr[-500:]
    assert limited.stdout.split()[2] in ("cpu-avx2", "cpu-avx2-emulated", "cpu-other")  # whatever this CPU is


@pytest.mark.parametrize("name, dtype, precision, profile", [
    ("Tesla T4", torch.float16, {"bf16": False, "fp16": True, "use_cpu": False}, "colab-t4"),
    ("Tesla V100-SXM2-16GB", torch.float16, {"bf16": False, "fp16": True, "use_cpu": False}, "colab-t4"),
    ("NVIDIA A100-SXM4-40GB", torch.bfloat16, {"bf16": True, "fp16": False, "use_cpu": False}, "gpu"),
    ("NVIDIA H100 80GB HBM3", torch.bfloat16, {"bf16": True, "fp16": False, "use_cpu": False}, "gpu")])
def test_mocked_gpus_get_dtype_precision_and_profile_by_compute_capability(mock_card, name, dtype, precision, profile):
    mock_card(name)
    hardware = helpers.detect_hardware()
    assert (hardware.device, hardware.name) == ("cuda", name)
    assert hardware.dtype == dtype and hardware.trainer_precision() == precision
    assert helpers.recommend_profile(hardware) == profile
    assert helpers.resolve_profile("auto") == profile and helpers.settings("auto").profile == profile
    assert helpers.resolve_profile("cpu") == "cpu"  # a profile named explicitly still wins


def test_auto_is_the_cpu_profile_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert helpers.settings("auto").profile == "cpu" and helpers.settings().model_source == "offline"
