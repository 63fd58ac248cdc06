"""Greedy decoding on a CPU: each layer's product for a few rows, in the orientation MKL runs fast.

At every generated token each linear layer multiplies a handful of rows (one per sequence in the
batch) by its whole weight, and the weights (540 MB for SmolLM2 in fp32, with a 113 MB output layer;
1.1 GB for Gemma 3, whose output layer alone is 671 MB) come from memory, not the cache.
`torch.nn.functional.linear` hands the product to MKL as `x @ W.T`, which for a few rows reads the
weight several times over; the same product written `(W @ x.T).T` reads it about once, and an odd
row count gets a zero row added (MKL's one-column product is its slow one). `benchmarks/decoding.py`
measures the time; the logits agree to fp32 rounding and greedy replies are the same
(tests/test_cpu_decoding.py).
"""
import types
from contextlib import contextmanager

import torch

MAX_ROWS = 128  # measured faster up to here (SmolLM2 and Gemma 3 shapes, fp32, with and without AVX-512)


@contextmanager
def fast_decoding(model):
    """Inside the block, `model`'s linear layers multiply a few rows the fast way on a CPU.

    It applies only where it changes nothing but the time: no gradient, fp32, CPU, at most MAX_ROWS rows
    (a decoding step; a prompt's prefill has more); everything else runs each layer's own forward.
    Layers another library hooked (a forward of their own) are left alone.
    """
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and "forward" not in vars(m)]
    for layer in layers:
        layer.forward = types.MethodType(_few_rows_forward, layer)
    try:
        yield model
    finally:
        for layer in layers:
            del layer.forward


def _few_rows_forward(layer, hidden):
    rows = hidden.numel() // hidden.shape[-1]
    if (torch.is_grad_enabled() or rows > MAX_ROWS or hidden.device.type != "cpu"
            or hidden.dtype != torch.float32 or layer.weight.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")):
        return torch.nn.functional.linear(hidden, layer.weight, layer.bias)
    flat = hidden.reshape(rows, hidden.shape[-1])
    if rows % 2:
        flat = torch.cat([flat, flat.new_zeros(1, flat.shape[1])])
    out = (layer.weight @ flat.t()).t()[:rows]
    if layer.bias is not None:
        out = out + layer.bias
    return out.contiguous().reshape(*hidden.shape[:-1], layer.out_features)
