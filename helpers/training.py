"""Reading a training run: its loss curves as a table and a plot, and what their shape means."""
import functools
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def trl_command() -> list:
    """How to start the `trl` command line of this kernel's Python: the script beside it (a venv),
    else the one on PATH (Colab's pip puts it in /usr/local/bin), else through the interpreter."""
    import shutil
    import sys
    beside = Path(sys.executable).with_name("trl")
    if beside.exists():
        return [str(beside)]
    on_path = shutil.which("trl")
    if on_path:
        return [on_path]
    return [sys.executable, "-c", "from trl.cli import main; main()"]


def fresh_output_dir(path) -> str:
    """`path` if it is new or empty, else `path-2`, `path-3`...: a run never overwrites an earlier one."""
    base = Path(path)
    for candidate in [base] + [base.with_name(f"{base.name}-{i}") for i in range(2, 1000)]:
        if not candidate.exists() or not any(candidate.iterdir()):
            if candidate != base:
                print(f"{base} already holds a run; this one writes to {candidate}")
            return str(candidate)
    raise RuntimeError(f"too many runs beside {base}: clean some up")


def loss_table(log_history):
    """Trainer.state.log_history as a DataFrame: step, train_loss, eval_loss (one row per step)."""
    import pandas as pd

    rows = {}
    for entry in log_history:
        step = entry.get("step")
        if "loss" in entry:
            rows.setdefault(step, {})["train_loss"] = float(entry["loss"])
        if "eval_loss" in entry:
            rows.setdefault(step, {})["eval_loss"] = float(entry["eval_loss"])
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    table.index.name = "step"
    return table


def plot_losses(log_history, title: str = "Loss", ax=None, logy: bool = False):
    """Train and eval loss against the step, on one plot (on `ax`, a panel of a larger figure, if given);
    `logy` for curves that fall by orders of magnitude."""
    import matplotlib.pyplot as plt

    table = loss_table(log_history)
    fig, ax = plt.subplots(figsize=(7, 3.5)) if ax is None else (ax.figure, ax)
    for column, style in (("train_loss", "-o"), ("eval_loss", "-s")):
        if column in table:
            series = table[column].dropna()
            ax.plot(series.index, series.values, style, label=column.replace("_", " "), markersize=4)
    ax.set(xlabel="step", ylabel="loss", title=title, yscale="log" if logy else "linear")
    ax.grid(alpha=0.3)
    ax.legend()
    plt.close(fig)  # the notebook shows the returned figure once
    return fig


@dataclass(frozen=True)
class Diagnosis:
    pattern: str
    meaning: str
    fix: str

    def __str__(self):
        return f"{self.pattern}: {self.meaning}\nWhat to do: {self.fix}"


def diagnose(train_losses, eval_losses=None) -> Diagnosis:
    """Name the pattern of a loss curve, as the chapter describes them, with the matching fix.

    Healthy runs go through a sharp drop, then stabilise, then converge. The warning signs are
    divergence, underfitting (the loss barely moves), overfitting (eval loss turns up while
    train loss keeps falling) and memorisation (train loss near zero, eval loss far above it).
    """
    train = [float(x) for x in train_losses]
    evals = [] if eval_losses is None else [float(x) for x in eval_losses]
    if len(train) < 3:
        raise ValueError(f"need at least 3 logged train losses to read a curve, got {len(train)}; "
                         "log more often (logging_steps) or train longer")
    if not all(map(math.isfinite, train + evals)):
        return Diagnosis("diverged", "the loss became NaN or infinite.",
                         "lower the learning rate (10x), and check for empty or broken examples")
    third = max(1, len(train) // 3)
    start, end = sum(train[:third]) / third, sum(train[-third:]) / third
    drop = (start - end) / start
    if end > start * 1.05:
        return Diagnosis("diverging", "the train loss is going up.",
                         "lower the learning rate; use warmup; check the data and the loss mask")
    if evals and min(train[-third:]) < 0.05 and evals[-1] > 10 * max(min(train[-third:]), 0.01):
        return Diagnosis("memorisation", "the model reproduces its training examples but does not generalise.",
                         "stop earlier, add more varied data, or lower the number of epochs")
    if len(evals) >= 3 and evals[-1] > min(evals) * 1.05 and train[-1] < train[0]:
        return Diagnosis("overfitting", "eval loss turned up while train loss kept falling.",
                         "stop at the lowest eval loss (load_best_model_at_end), use fewer epochs or more data")
    if drop < 0.05:
        return Diagnosis("underfitting", "the loss barely moved.",
                         "raise the learning rate, train longer, and check that the mask leaves tokens to learn")
    # share of the whole drop made between the middle and the last third (means resist noise)
    middle = train[third:-third] or train[third - 1:third]
    recent = (sum(middle) / len(middle) - end) / (start - end)
    if recent < 0.05:
        return Diagnosis("converged", "the loss has flattened: more steps on this data will not help much.",
                         "stop here, or change the data or the model to improve further")
    if recent >= 0.3:
        return Diagnosis("sharp drop", "the loss is still falling fast: the model is adapting to the format.",
                         "train longer: the run ended before the curve flattened")
    return Diagnosis("stabilising", "after the initial drop the loss decreases slowly.",
                     "keep training while the eval loss falls; stop when it flattens")


def use_trained_token_loss_on_cpu(trainer, trained_positions_only: bool = True, drop_padding: bool = True):
    """On a CPU, make an `SFTTrainer` score only the tokens it trains on; returns the trainer.

    TRL 1.x scores tokens through a fused LM head whose fast kernel needs a GPU (Triton). Its CPU
    fallback scores every position, padding and prompt included, and recomputes the logits in the
    backward pass. Here the model's body runs as usual and its output layer (576 x 49,152 weights
    for SmolLM2, 640 x 262,144 for Gemma 3) runs only on the positions whose next token is trained:
    with assistant-only loss a few percent of them, so a batch's logits shrink from hundreds of MB to a few. The loss is the
    same number (tests/test_training.py). `trained_positions_only=False` runs the model's own full
    loss instead (benchmarks/training_speed.py compares the three). A padded batch's pad positions are
    skipped too (`padding_dropped`; `drop_padding=False` computes them, for comparison). TRL's entropy
    and token accuracy logs are left out; its `num_tokens` count is kept. On a GPU the trainer is left
    as it is.
    """
    import types

    if trainer.args.device.type == "cpu":
        loss = functools.partial(_cpu_loss, trained_positions_only=trained_positions_only)
        trainer.compute_loss = types.MethodType(loss, trainer)
        trainer.__dict__.pop("training_step", None)  # called again with drop_padding=False: the class's own step
        if trained_positions_only and drop_padding:
            trainer.training_step = types.MethodType(_step_with_per_conversation_attention, trainer)
    return trainer


def adapter_in_training_precision(trainer):
    """Keep a QLoRA adapter in fp32 where the trainer does not train in bf16; returns the trainer.

    For a 4-bit model, `SFTTrainer` casts the adapter's weights to bf16 (the QLoRA paper's choice,
    made for GPUs with bf16 units). Where the trainer runs in fp32 or fp16 (a CPU without bf16
    units, a T4), every adapter matmul then runs in emulated bf16: on a CPU limited to AVX2 that
    made a QLoRA step 1.9x as long as LoRA's (5.61 against 2.95 s; benchmarks/training_speed.py). fp32 adapter weights
    are also what fp16 mixed precision expects (fp32 master weights). With bf16 training, or for a
    model that is not 4-bit, the trainer is left as it is. Call it before `trainer.train()`.
    """
    if getattr(trainer.model, "is_loaded_in_4bit", False) and not trainer.args.bf16:  # a PeftModel passes it through
        import torch

        for param in trainer.model.parameters():
            if param.requires_grad and param.dtype == torch.bfloat16:
                param.data = param.data.float()
    return trainer


# Architectures whose logits are just lm_head(hidden): no scaling to repeat here (Gemma 3's soft-capping is
# checked per model: off in Gemma-3-270M, whose 262k-row output layer makes this path matter most)
_PLAIN_HEADS = {"llama", "mistral", "qwen2", "qwen3", "gemma3_text"}


def _plain_head(config) -> bool:
    return config.model_type in _PLAIN_HEADS and getattr(config, "final_logit_softcapping", None) is None


def _causal_lm(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # a PeftModel's transformers model


def _step_with_per_conversation_attention(trainer, model, *args, **kwargs):
    with per_conversation_attention(_causal_lm(model)):  # forward and backward: checkpointing re-runs attention
        return type(trainer).training_step(trainer, model, *args, **kwargs)


def _cpu_loss(trainer, model, inputs, return_outputs=False, num_items_in_batch=None, trained_positions_only=True):
    from transformers import Trainer

    if model.training:  # the count TRL logs as num_tokens: real tokens, padding excluded
        mask = inputs.get("attention_mask")
        trainer._total_train_tokens += int(mask.sum()) if mask is not None else inputs["position_ids"].size(1)
        trainer._metrics["train"]["num_tokens"] = [trainer._total_train_tokens]
    causal_lm = _causal_lm(model)
    if (not trained_positions_only or not model.training or return_outputs
            or not _plain_head(causal_lm.config)):
        return Trainer.compute_loss(trainer, model, {**inputs, "use_cache": False}, return_outputs, num_items_in_batch)
    # padding_dropped stands aside unless the training step runs per_conversation_attention (drop_padding=True)
    with padding_dropped(causal_lm, inputs) as batch, trainer.accelerator.autocast():  # accelerate's autocast, if on
        return trained_positions_loss(causal_lm, batch, num_items_in_batch if trainer.model_accepts_loss_kwargs else None)


@contextmanager
def per_conversation_attention(causal_lm):
    """While the block runs, forward and backward, let the rows `padding_dropped` makes attend per conversation.

    Every other batch attends exactly as with SDPA (its masks and kernel). Gradient checkpointing re-runs the
    attention in the backward pass, so the block must hold the backward too: the course's trainer wraps each
    whole training step in it. A model whose attention is not SDPA is left as it is.
    """
    config = causal_lm.config
    if config._attn_implementation != "sdpa":
        yield
        return
    config._attn_implementation = _per_conversation_attention()
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"


@contextmanager
def padding_dropped(causal_lm, inputs):
    """The padded batch `inputs` as one row of its conversations' real tokens, each attending only to itself;
    `inputs` unchanged where that cannot be done exactly. Use it inside `per_conversation_attention`.

    A padded batch computes every pad position through every layer (lesson 02's packing table shows a batch's
    padding share). Here the conversations are laid end to end, positions restart at each one (so the rotary
    positions are the ones each had), the first token of each is never a target, and attention runs per
    conversation (torch's SDPA, causal, in fp32 even under bf16 autocast: on a CPU the same attention's bf16
    backward took twice as long). Same loss and gradients up to float rounding (tests/test_training.py);
    benchmarks/training_speed.py compares it with the pad positions computed. It stands aside for batches
    without padding (packed ones), outside `per_conversation_attention` (a model whose attention is not SDPA)
    and for a conversation longer than a sliding attention window.
    """
    mask = inputs.get("attention_mask")
    config = causal_lm.config
    window = getattr(config, "sliding_window", None) or float("inf")
    if (mask is None or bool(mask.all()) or config._attn_implementation != _per_conversation_attention()
            or int(mask.sum(1).max()) > window):
        yield inputs
        return
    keep = mask.bool()
    positions = (keep.cumsum(1) - 1)[keep]
    labels = inputs["labels"][keep].clone()
    labels[positions == 0] = -100  # as in the padded batch: nothing predicts a conversation's first token
    lengths = keep.sum(1)
    bounds = [0] + lengths[lengths > 0].cumsum(0).tolist()  # where each conversation starts and ends in the row
    yield {"input_ids": inputs["input_ids"][keep][None], "position_ids": positions[None], "labels": labels[None],
           "conversation_bounds": bounds}


@functools.cache  # registered with transformers once, on first use
def _per_conversation_attention() -> str:
    import torch
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import sdpa_mask

    def attention(module, query, key, value, attention_mask, conversation_bounds=None, **kwargs):
        """SDPA; over each conversation on its own in a `padding_dropped` row (its `conversation_bounds`)."""
        if conversation_bounds is None:
            return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        dtype = value.dtype  # under bf16 autocast: bf16, what the next layer expects back
        with torch.autocast("cpu", enabled=False):  # fp32: torch's CPU kernel runs a bf16 backward about 2x slower
            query, key, value = query.float(), key.float(), value.float()
            pieces = [sdpa_attention_forward(module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None,
                                             **kwargs)[0]
                      for a, b in zip(conversation_bounds[:-1], conversation_bounds[1:])]
        return torch.cat(pieces, dim=1).to(dtype), None

    AttentionInterface.register("course_per_conversation_sdpa", attention)
    AttentionMaskInterface.register("course_per_conversation_sdpa", sdpa_mask)  # every other batch: SDPA's own masks
    return "course_per_conversation_sdpa"


def trained_positions_loss(causal_lm, inputs, num_items_in_batch=None):
    """The causal-LM loss of `inputs` (with `labels`), the output layer run only where a label is set."""
    import torch.nn.functional as F

    body = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids", "conversation_bounds") if k in inputs}
    with embedding_gradient_in_one_buffer(causal_lm):
        hidden = causal_lm.get_decoder()(**body, use_cache=False).last_hidden_state
    targets = inputs["labels"][:, 1:]  # position t predicts token t + 1
    trained = targets != -100
    logits = output_layer(causal_lm, hidden[:, :-1][trained]).float()
    if num_items_in_batch is None:  # as the model's loss: a mean over this batch's trained tokens
        return F.cross_entropy(logits, targets[trained])
    return F.cross_entropy(logits, targets[trained], reduction="sum") / num_items_in_batch


def output_layer(causal_lm, hidden):
    """The model's output layer on `hidden`, its weight's gradient a tensor of its own that autograd can add to.

    In fp32, `nn.Linear` hands back its weight's gradient as a transposed view of another tensor. Autograd adds a
    second gradient into a first one in place only if the first owns its memory, so for an output layer tied to the
    input embedding (SmolLM2, Gemma 3) it allocated a third weight-sized tensor for their sum every step: 0.77 s of
    a 4.0 s step of lesson 02's base model (Gemma-3-270M, 671 MB) on a CPU limited to AVX2 (2-core AMD EPYC).
    Here the same two matmuls return a gradient the embedding's is added into. Same numbers (tests/test_training.py).
    Under autocast (bf16 units) the layer is left as it is: the cast back to fp32 already makes a tensor of its own.
    """
    import torch

    head = causal_lm.get_output_embeddings()
    if (type(head) is not torch.nn.Linear or head.bias is not None  # an adapter on it, a 4-bit layer: their own forward
            or not torch.is_grad_enabled() or torch.is_autocast_enabled(hidden.device.type)):
        return head(hidden)
    return _linear_with_own_gradient().apply(hidden, head.weight)


@functools.cache  # one class, built on first use: importing this module does not import torch
def _linear_with_own_gradient():
    import torch

    class LinearWithOwnGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, hidden, weight):
            ctx.save_for_backward(hidden, weight)
            return hidden @ weight.t()

        @staticmethod
        def backward(ctx, grad):
            hidden, weight = ctx.saved_tensors
            grad_hidden = grad @ weight if ctx.needs_input_grad[0] else None
            grad_weight = grad.t() @ hidden if ctx.needs_input_grad[1] else None  # a new tensor, not a view
            return grad_hidden, grad_weight

    return LinearWithOwnGradient


# Embedding classes (module and name) whose forward is a plain lookup, times a scale for Gemma 3 (checked per
# transformers release by tests/test_training.py); any other class keeps its own forward.
_PLAIN_LOOKUPS = {"torch.nn.modules.sparse.Embedding": None,
                  "transformers.models.gemma3.modeling_gemma3.Gemma3TextScaledWordEmbedding": "embed_scale"}


@contextmanager
def embedding_gradient_in_one_buffer(causal_lm):
    """While the block runs the model, its input embedding's backward writes the weight's gradient into one
    buffer kept for every step, instead of a fresh zeroed tensor the size of the whole embedding.

    That fresh tensor (262k x 640 floats, 671 MB, for Gemma 3) is memory the process touches for the first
    time every step, which on a CPU costs more than the lookup's arithmetic: lesson 02's base-model SFT took
    3.39 s a step with it and 2.74 s with the buffer under glibc's default pages; with the 2 MB pages the
    Makefile sets, 2.77 and 2.71 (2-core AMD EPYC, benchmarks/allocator.py). The gradient is the same sum
    (tests/test_training.py). Only for an embedding tied to the output layer, whose gradient autograd adds
    to the output layer's, so the buffer itself never becomes `.grad`.
    """
    import torch

    embedding, head = causal_lm.get_input_embeddings(), causal_lm.get_output_embeddings()
    kind = f"{type(embedding).__module__}.{type(embedding).__qualname__}"
    if (kind not in _PLAIN_LOOKUPS or head is None or head.weight is not embedding.weight
            or not (embedding.weight.requires_grad and torch.is_grad_enabled())
            or embedding.max_norm is not None or embedding.scale_grad_by_freq or embedding.sparse):
        yield
        return
    buffer = getattr(embedding, "_course_gradient_buffer", None)
    if buffer is None or buffer.shape != embedding.weight.shape or buffer.dtype != embedding.weight.dtype:
        buffer = embedding._course_gradient_buffer = torch.zeros_like(embedding.weight)
    scale = getattr(embedding, _PLAIN_LOOKUPS[kind]) if _PLAIN_LOOKUPS[kind] else None

    def lookup(input_ids):
        vectors = _lookup_into_buffer().apply(embedding.weight, input_ids, buffer, embedding.padding_idx)
        return vectors if scale is None else vectors * scale.to(embedding.weight.dtype)

    embedding.forward = lookup  # an instance attribute: nn.Module calls it instead of the class's forward
    try:
        yield
    finally:
        del embedding.forward


@functools.cache  # one class, built on first use: importing this module does not import torch
def _lookup_into_buffer():
    import torch
    import torch.nn.functional as F

    class LookupIntoBuffer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, weight, input_ids, buffer, padding_idx):
            ctx.save_for_backward(input_ids)
            ctx.buffer, ctx.padding_idx = buffer, padding_idx
            return F.embedding(input_ids, weight, padding_idx)

        @staticmethod
        def backward(ctx, grad):
            (input_ids,) = ctx.saved_tensors
            rows = grad.reshape(-1, grad.size(-1)).to(ctx.buffer.dtype)
            buffer = ctx.buffer.zero_().index_add_(0, input_ids.reshape(-1), rows)
            if ctx.padding_idx is not None:  # as nn.Embedding: the padding row gets no gradient
                buffer[ctx.padding_idx] = 0
            return buffer, None, None, None

    return LookupIntoBuffer


def step_clock():
    """A `TrainerCallback` that records when each training step ends (`.ends`), so that a timing can
    leave out the first step's start-up cost: `SFTTrainer(..., callbacks=[clock])`."""
    import time

    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.begin, self.ends = None, []

        def on_train_begin(self, args, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

        def seconds_per_step(self) -> float:
            """Mean time of the steps after the first (the first pays for start-up); of the one step if one ran."""
            if not self.ends:
                raise ValueError("no training step has ended: pass the clock in callbacks=[...] and train first")
            if len(self.ends) == 1:
                return self.ends[0] - self.begin
            return (self.ends[-1] - self.ends[0]) / (len(self.ends) - 1)

    return StepClock()


def tokens_seen(trainer) -> int:
    """Training tokens processed so far, from TRL's `num_tokens` log entries (padding excluded)."""
    counts = [float(entry["num_tokens"]) for entry in trainer.state.log_history if "num_tokens" in entry]
    if not counts:
        raise ValueError("no num_tokens in the trainer's logs: set logging_steps so that at least one step is logged")
    return int(max(counts))
