"""The vectorized 4-bit de-quantization gives bitsandbytes' own numbers, and a 4-bit model's logits do not move."""
import subprocess
import sys

import pytest
import torch

from helpers import cpu_4bit

bnb_functional = pytest.importorskip("bitsandbytes.functional")


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape,blocksize,nested", [((192, 576), 64, True), ((576, 96), 128, False),
                                                    ((7, 9), 64, False)])  # 63 values: a partial block
def test_same_values_as_bitsandbytes(quant_type, dtype, shape, blocksize, nested):
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
    from bitsandbytes.backends.utils import _get_4bit_code

    weight = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    packed, state = bnb_functional.quantize_4bit(weight, blocksize=blocksize, quant_type=quant_type,
                                                 compress_statistics=nested)
    absmax = (bnb_functional.dequantize_blockwise(state.absmax, state.state2) + state.offset) if nested else state.absmax
    ours = cpu_4bit.vectorized_dequantize_4bit(packed, absmax, blocksize, quant_type, shape, dtype)
    reference = _dequantize_4bit_compute(packed.reshape(-1), absmax, _get_4bit_code(quant_type, "cpu"),
                                         blocksize, shape, dtype)
    assert ours.dtype == dtype and ours.shape == shape
    assert torch.equal(ours, reference)
    # and the kernel bitsandbytes runs on this CPU (its AVX-512 path takes blocks within rows: rows of whole blocks)
    if dtype == torch.float32 and shape[-1] % blocksize == 0:
        assert torch.equal(ours, bnb_functional.dequantize_4bit(packed, state))


def test_needed_only_on_x86_without_avx512(monkeypatch):
    from helpers import hardware
    for machine, flags, needed in (("x86_64", "fpu avx2 fma", True), ("x86_64", "avx2 avx512f avx512bw", False),
                                   ("aarch64", "fp asimd", False)):
        monkeypatch.setattr(hardware, "_cpu_flags", lambda: "flags : " + flags)
        monkeypatch.setattr("platform.machine", lambda: machine)
        assert cpu_4bit.needs_vectorized_dequantize() is needed


FORCED_IN_A_4BIT_MODEL = """
import torch, helpers
from helpers import cpu_4bit
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                       bnb_4bit_compute_dtype=torch.float32)
model = AutoModelForCausalLM.from_pretrained(helpers.model_path("offline"), quantization_config=q, dtype=torch.float32)
ids = torch.tensor([[1, 504, 3458, 314, 2114, 30, 216]])
model.train()  # in eval mode, on a CPU with AVX512-BF16, bitsandbytes repacks the weights for its own kernel
with torch.no_grad():
    before = model(ids).logits
    calls = []
    table = cpu_4bit._pair_table
    cpu_4bit._pair_table = lambda quant_type: calls.append(quant_type) or table(quant_type)
    assert cpu_4bit.use_vectorized_dequantize(force=True)
    after = model(ids).logits
assert len(calls) == 210, len(calls)  # 30 layers x 7 linear layers, each de-quantized once
assert torch.equal(before, after), (before - after).abs().max()
print("same logits")
"""


@pytest.mark.slow
def test_a_4bit_model_gives_the_same_logits_with_it():
    # in a fresh process: the kernel stays replaced for the rest of a process
    finished = subprocess.run([sys.executable, "-c", FORCED_IN_A_4BIT_MODEL], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0 and "same logits" in finished.stdout, finished.stderr[-3000:]
