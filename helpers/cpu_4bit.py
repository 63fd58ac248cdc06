"""QLoRA on a CPU without AVX-512: a vectorized 4-bit de-quantization for bitsandbytes.

A 4-bit linear layer on a CPU de-quantizes its weights at every use (forward, recomputed forward,
backward), then multiplies in the compute dtype. bitsandbytes 0.50's CPU kernel for that step has
an AVX-512 path; without AVX-512 it falls back to a scalar loop that decodes each 4-bit code
through a chain of comparisons. On a 2-core AVX2 CPU a QLoRA step took 9.7 s against LoRA's 4.4
(benchmarks/results/training-speed-cpu-avx2.md), that loop and TRL's bf16 adapter together (the
second: `training.adapter_in_training_precision`); the loop's own share is not yet measured on such
a CPU (one with AVX-512 never runs it). `use_vectorized_dequantize()` swaps in
bitsandbytes' own formula (code[nibble] x block scale, high nibble first) done with whole-tensor
PyTorch ops: a 256-entry table maps each byte to its two values. The numbers are the same
(tests/test_cpu_4bit.py), only the time changes.
"""
import warnings
from math import prod

import torch

_installed = False
_pair_tables = {}  # quant type -> (256, 2) table: byte -> (value of its high nibble, of its low nibble)


def needs_vectorized_dequantize() -> bool:
    """True on an x86 CPU without AVX-512, where bitsandbytes de-quantizes in its scalar loop."""
    import platform

    from .hardware import _cpu_flags
    return platform.machine().lower() in ("x86_64", "amd64") and "avx512f" not in _cpu_flags().split()


def use_vectorized_dequantize(force: bool = False) -> bool:
    """Route bitsandbytes' CPU 4-bit de-quantization through `vectorized_dequantize_4bit` where its
    own kernel is the scalar loop (or always, with `force`). Returns whether it is in use. Safe to
    call more than once; it lasts for the process (torch keeps one CPU kernel per operator)."""
    global _installed
    if _installed or not (force or needs_vectorized_dequantize()):
        return _installed
    import bitsandbytes  # noqa: F401  (defines the operator and its own CPU kernel first)

    with warnings.catch_warnings():  # torch warns that a kernel is replaced: that is the point
        warnings.simplefilter("ignore", UserWarning)
        torch.library.register_kernel("bitsandbytes::dequantize_4bit", "cpu")(vectorized_dequantize_4bit)
    _installed = True
    return True


def vectorized_dequantize_4bit(A: torch.Tensor, absmax: torch.Tensor, blocksize: int, quant_type: str,
                               shape, dtype: torch.dtype) -> torch.Tensor:
    """bitsandbytes' `dequantize_4bit` on a CPU: each byte of `A` holds two 4-bit codes (high nibble
    first); value = code table[nibble] x absmax of its block of `blocksize` values."""
    n = prod(shape)
    if n % blocksize or blocksize % 2:  # a partial last block: bitsandbytes' reference implementation
        from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
        from bitsandbytes.backends.utils import _get_4bit_code
        return _dequantize_4bit_compute(A.view(torch.uint8).reshape(-1), absmax,
                                        _get_4bit_code(quant_type, A.device), blocksize, shape, dtype)
    pairs = _pair_table(quant_type).index_select(0, A.view(torch.uint8).reshape(-1)[: n // 2].int())
    values = pairs.view(-1, blocksize)
    values.mul_(absmax.float().view(-1, 1))
    return values.view(shape).to(dtype)


def _pair_table(quant_type: str) -> torch.Tensor:
    if quant_type not in _pair_tables:
        from bitsandbytes.backends.utils import _get_4bit_code
        code = _get_4bit_code(quant_type, "cpu").float()
        _pair_tables[quant_type] = torch.stack([code.repeat_interleave(16), code.repeat(16)], dim=1).contiguous()
    return _pair_tables[quant_type]
