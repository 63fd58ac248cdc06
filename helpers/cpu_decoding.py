"""Greedy decoding on a CPU: each layer's product in the form the CPU libraries run fast.

At every generated token each linear layer multiplies a handful of rows (one per sequence in the
batch) by its whole weight, and the weights (540 MB for SmolLM2 in fp32, with a 113 MB output layer;
1.1 GB for Gemma 3, whose output layer alone is 671 MB) come from memory, not the cache.
`torch.nn.functional.linear` hands the product to MKL as `x @ W.T`, which for a few rows reads the
weight several times over. For up to 4 rows the same product written `(W @ x.T).T` reads it about
once (an odd row count gets a zero row added: MKL's one-column product is its slow one). From 5 rows,
decoding steps and a prompt's prefill alike, oneDNN's product on a copy of the weight in its own
blocked layout is faster still. That copy is made once per block, at the layer's second product of
that size (one prompt's prefill alone would not pay for it), and dropped when the block ends.
An unmerged PEFT LoRA layer adds `scaling * (x @ A.T) @ B.T` to its base layer's product in two calls
instead of PEFT's forward, whose Python costs more than its two small products at a decoding step.
`benchmarks/decoding.py` measures the time; the logits agree to fp32 rounding and greedy replies
are the same (tests/test_cpu_decoding.py).
"""
import sys
import types
from contextlib import contextmanager

import torch

MAX_ROWS = 128  # (W @ x.T).T measured faster than x @ W.T up to here (without oneDNN; SmolLM2 and Gemma 3 shapes)
PACKED_FROM_ROWS = 5  # fewer rows: (W @ x.T).T was as fast or faster (SmolLM2's layers, AVX2 and AVX-512)
PACKED_FOR_ROWS = 16  # the row count oneDNN lays the weight out for: the lessons' usual batch (2,000 rows: no faster)


@contextmanager
def fast_decoding(model):
    """Inside the block, `model`'s linear layers, and its unmerged LoRA layers, multiply the fast way on a CPU
    (with oneDNN, at the cost of a second copy of their weights while the block runs: 0.5 GB for
    SmolLM2, 1.1 GB for Gemma 3).

    It applies only where it changes nothing but the time: no gradient, fp32, CPU, no autocast;
    everything else runs each layer's own forward, as does a prefill where torch has no oneDNN.
    Layers another library hooked (a forward of their own) are left alone. A weight changed inside
    the block is multiplied as it is now: its oneDNN copy is made again.
    """
    lora_linear = _lora_linear_class()
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and "forward" not in vars(m)]
    adapted = [m for m in model.modules() if type(m) is lora_linear and "forward" not in vars(m)]
    for layer in layers:
        layer.forward = types.MethodType(_fast_forward, layer)
    for layer in adapted:
        layer.forward = types.MethodType(_fast_lora_forward, layer)
    try:
        yield model
    finally:
        for layer in layers + adapted:
            del layer.forward
            vars(layer).pop("_onednn_weight", None)


def _fast_applies(hidden, weight):
    return not (torch.is_grad_enabled() or hidden.device.type != "cpu" or hidden.dtype != torch.float32
                or weight.dtype != torch.float32 or torch.is_autocast_enabled("cpu"))


def _fast_forward(layer, hidden):
    rows = hidden.numel() // hidden.shape[-1]
    if not _fast_applies(hidden, layer.weight):
        return torch.nn.functional.linear(hidden, layer.weight, layer.bias)
    flat = hidden.reshape(rows, hidden.shape[-1])
    packed = _onednn_weight(layer) if rows >= PACKED_FROM_ROWS else None
    if packed is not None:
        out = torch.ops.mkldnn._linear_pointwise(flat, packed, layer.bias, "none", [], "")
        return out.reshape(*hidden.shape[:-1], layer.out_features)
    if rows > MAX_ROWS:
        return torch.nn.functional.linear(hidden, layer.weight, layer.bias)
    if rows % 2:
        flat = torch.cat([flat, flat.new_zeros(1, flat.shape[1])])
    out = (layer.weight @ flat.t()).t()[:rows]
    if layer.bias is not None:
        out = out + layer.bias
    return out.contiguous().reshape(*hidden.shape[:-1], layer.out_features)


def _onednn_weight(layer):
    """The layer's weight in oneDNN's layout, made at the layer's second product of PACKED_FROM_ROWS or more
    rows in this block (one prompt's prefill alone does not pay for the copy) and made again after the
    weight changed; None before that, and where this torch has no oneDNN (the caller then uses MKL)."""
    weight = layer.weight
    made_from = (id(weight), weight.data_ptr(), weight._version)
    state = vars(layer).setdefault("_onednn_weight", {"products": 0})
    if state.get("made_from") == made_from:
        return state["packed"]
    state["products"] += 1
    if state["products"] < 2 or not torch.backends.mkldnn.is_available():
        return None
    state.update(made_from=made_from, packed=torch.ops.mkldnn._reorder_linear_weight(weight.detach(), PACKED_FOR_ROWS))
    return state["packed"]


def _lora_linear_class():
    """PEFT's LoRA linear layer, if PEFT is imported (a model with LoRA layers has imported it)."""
    if "peft" not in sys.modules:
        return None
    from peft.tuners.lora.layer import Linear
    return Linear


def _fast_lora_forward(layer, hidden, *args, **kwargs):
    """The base layer's product plus each active adapter's `scaling * (x @ A.T) @ B.T`, what PEFT's forward
    computes for plain LoRA; anything else (arguments, adapters disabled or merged, DoRA and other
    variants, a LoRA bias, active dropout, gradients, other dtypes) runs PEFT's own forward."""
    names = [name for name in layer.active_adapters if name in layer.lora_A]
    if args or kwargs or not all(_plain_lora(layer, name, hidden) for name in names) \
            or layer.disable_adapters or layer.merged:
        return type(layer).forward(layer, hidden, *args, **kwargs)
    result = layer.base_layer(hidden)
    flat, out = hidden.reshape(-1, hidden.shape[-1]), result.reshape(-1, result.shape[-1])
    for name in names:
        low = flat @ layer.lora_A[name].weight.t()
        out = torch.addmm(out, low, layer.lora_B[name].weight.t(), alpha=layer.scaling[name])
    return out.reshape(result.shape)


def _plain_lora(layer, name, hidden):
    dropout = layer.lora_dropout[name]
    return (name not in getattr(layer, "lora_variant", {}) and not getattr(layer, "use_dora", {}).get(name)
            and layer.lora_B[name].bias is None and not (dropout.training and isinstance(dropout, torch.nn.Dropout))
            and _fast_applies(hidden, layer.lora_A[name].weight) and _fast_applies(hidden, layer.lora_B[name].weight))
