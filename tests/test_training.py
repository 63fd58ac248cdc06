import math

import pytest

from helpers import training

pytestmark = pytest.mark.slow  # every test here loads the real model or runs notebooks

STEPS = range(30)
CURVES = {
    "sharp drop": [3.0 * math.exp(-s / 60) for s in STEPS],
    "stabilising": [1.0 + 2.0 * math.exp(-s / 8) for s in STEPS],
    "converged": [1.0 + 2.0 * math.exp(-s / 2) for s in STEPS],
    "underfitting": [3.0 - 0.002 * s for s in STEPS],
    "diverging": [1.0 + 0.05 * s for s in STEPS],
}


@pytest.mark.parametrize("pattern", CURVES)
def test_each_constructed_curve_is_named(pattern):
    assert training.diagnose(CURVES[pattern]).pattern == pattern


def test_overfitting_needs_the_eval_curve():
    train = [3.0 * math.exp(-s / 5) + 0.2 for s in STEPS]
    evals = [1.5, 1.2, 1.1, 1.15, 1.3, 1.45]
    diagnosis = training.diagnose(train, evals)
    assert diagnosis.pattern == "overfitting" and "load_best_model_at_end" in diagnosis.fix


def test_memorisation():
    train = [2.0 * math.exp(-s / 3) + 0.001 for s in STEPS]
    assert training.diagnose(train, [1.9, 1.5, 1.6]).pattern == "memorisation"


def test_nan_and_too_short_curves():
    assert training.diagnose([2.0, 1.5, float("nan")]).pattern == "diverged"
    with pytest.raises(ValueError, match="at least 3"):
        training.diagnose([2.0, 1.0])


def test_loss_table_and_plot_read_trainer_logs():
    history = [{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}, {"eval_loss": 1.7, "step": 2},
               {"train_runtime": 3.0, "step": 2}]
    table = training.loss_table(history)
    assert list(table.index) == [1, 2] and table.loc[2, "eval_loss"] == 1.7
    figure = training.plot_losses(history)
    assert [line.get_label() for line in figure.axes[0].lines] == ["train loss", "eval loss"]
    import matplotlib.pyplot as plt
    two, (left, right) = plt.subplots(1, 2)
    assert training.plot_losses(history, "second", ax=right, logy=True) is two  # a panel of a larger figure
    assert right.get_yscale() == "log" and right.get_title() == "second" and not left.lines
    plt.close(two)


def test_fresh_output_dir_never_reuses_a_folder_with_files(tmp_path):
    first = tmp_path / "sft"
    assert training.fresh_output_dir(first) == str(first)
    first.mkdir()
    assert training.fresh_output_dir(first) == str(first)      # empty: fine to use
    (first / "model.safetensors").write_text("a learner's model")
    assert training.fresh_output_dir(first) == str(tmp_path / "sft-2")
    assert (first / "model.safetensors").read_text() == "a learner's model"


def test_a_real_cpu_run_reads_as_still_dropping():
    import json
    from pathlib import Path

    run = json.loads((Path(__file__).parent / "data" / "sft_cpu_losses.json").read_text())
    assert training.diagnose(run["train_loss"]).pattern == "sharp drop"  # noisy, but clearly still falling


def test_the_trained_token_loss_equals_trls_fused_loss_and_counts_the_same_tokens(offline_model, tmp_path):
    import copy

    import torch
    from trl import SFTConfig, SFTTrainer

    from helpers import data, templates

    model, tokenizer = offline_model
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = templates.training_template()
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_length=256, assistant_only_loss=True,
                     use_cpu=True, bf16=False, report_to="none")
    conversations = data.load_chat_dataset()["train"].select(range(4))
    fused = SFTTrainer(model=copy.deepcopy(model), args=args, train_dataset=conversations, processing_class=tokenizer)
    own = training.use_trained_token_loss_on_cpu(
        SFTTrainer(model=copy.deepcopy(model), args=args, train_dataset=conversations, processing_class=tokenizer))
    batch = next(iter(fused.get_train_dataloader()))
    losses = []
    for trainer in (fused, own):
        trainer.model.train()
        with torch.no_grad():
            losses.append(trainer.compute_loss(trainer.model, dict(batch)).item())
    assert abs(losses[0] - losses[1]) < 1e-4, losses
    assert own._metrics["train"]["num_tokens"] == fused._metrics["train"]["num_tokens"] == [int(batch["attention_mask"].sum())]


def _sft_batch(offline_model, tmp_path, **config):
    import copy

    from trl import SFTConfig, SFTTrainer

    from helpers import data, templates

    model, tokenizer = offline_model
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = templates.training_template()
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, assistant_only_loss=True, use_cpu=True,
                     bf16=False, report_to="none", activation_checkpointing=False, **{"max_length": 256, **config})
    trainer = SFTTrainer(model=copy.deepcopy(model), args=args, train_dataset=data.load_chat_dataset()["train"].select(range(4)),
                         processing_class=tokenizer)
    return dict(next(iter(trainer.get_train_dataloader())))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "LoRA"])
def test_the_trained_token_loss_gives_the_models_gradients(offline_model, tmp_path, lora):
    """Training on it is training on the model's own loss: same value, same gradient, for full and LoRA."""
    import torch
    from peft import LoraConfig, get_peft_model

    import helpers

    batch = _sft_batch(offline_model, tmp_path)
    assert (batch["labels"] == -100).float().mean() > 0.5  # most positions are prompt or padding: skipped
    model = helpers.load_model("offline")[0]  # a fresh copy: other tests' trainers may have set checkpointing on theirs
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                                                 task_type="CAUSAL_LM"))
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    results = []
    for loss_of in (lambda: model(**batch).loss, lambda: training.trained_positions_loss(model.get_base_model() if lora else model, batch)):
        loss = loss_of()
        results.append((loss.item(), torch.autograd.grad(loss, trained[:6] + trained[-2:])))
    (model_loss, model_grads), (own_loss, own_grads) = results
    assert abs(model_loss - own_loss) < 1e-5, (model_loss, own_loss)
    for expected, got in zip(model_grads, own_grads):
        assert torch.allclose(expected, got, rtol=1e-3, atol=1e-6), (expected - got).abs().max()


def test_the_trained_token_loss_handles_padding_free_batches(offline_model, tmp_path):
    import torch

    import helpers

    batch = _sft_batch(offline_model, tmp_path, padding_free=True, max_length=None)
    assert "attention_mask" not in batch and batch["input_ids"].size(0) == 1  # one row, sequences told apart by position_ids
    model = helpers.load_model("offline")[0].eval()
    with torch.no_grad():
        expected = model(**batch, use_cache=False).loss.item()  # as in training: a cache would hide the packing
        got = training.trained_positions_loss(model, batch).item()
        assert abs(expected - got) < 1e-5
        scaled = training.trained_positions_loss(model, batch, num_items_in_batch=torch.tensor(10)).item()
    assert abs(scaled - got * int((batch["labels"][:, 1:] != -100).sum()) / 10) < 1e-4  # a sum over the batch, / the count given


def test_trl_command_is_found_outside_a_venv(monkeypatch, tmp_path):
    # On Colab pip puts `trl` in /usr/local/bin, not beside /usr/bin/python3 (the kernel's interpreter)
    import subprocess
    import sys

    from helpers.training import trl_command
    real_python = sys.executable
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "trl").write_text("#!/bin/sh\n")
    (bin_dir / "trl").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert trl_command() == [str(bin_dir / "trl")]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    command = trl_command()
    assert command[0] == str(tmp_path / "python3")
    finished = subprocess.run([real_python, *command[1:], "sft", "--help"], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0 and "--max_length" in finished.stdout


def _trainable_dtypes(model):
    return {p.dtype for p in model.parameters() if p.requires_grad}


@pytest.mark.slow
def test_a_qlora_adapter_trains_in_fp32_where_the_trainer_does(tmp_path):
    import torch
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    import helpers
    from helpers import data, templates

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    model, tokenizer = helpers.load_model("offline", quantization_config=quantization)
    tokenizer.chat_template = templates.training_template()
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, max_length=128,
                     assistant_only_loss=True, use_cpu=True, bf16=False, report_to="none", save_strategy="no")
    trainer = SFTTrainer(model=model, args=args, train_dataset=data.load_chat_dataset()["train"].select(range(2)),
                         processing_class=tokenizer, peft_config=LoraConfig(r=4, target_modules=["q_proj"],
                                                                            task_type="CAUSAL_LM"))
    assert _trainable_dtypes(trainer.model) == {torch.bfloat16}  # TRL's cast, the reason the helper exists
    four_bit = sum(p.numel() for p in trainer.model.parameters() if p.dtype == torch.uint8)

    training.adapter_in_training_precision(trainer)
    assert _trainable_dtypes(trainer.model) == {torch.float32}
    assert sum(p.numel() for p in trainer.model.parameters() if p.dtype == torch.uint8) == four_bit > 0
    assert math.isfinite(trainer.train().training_loss)


@pytest.mark.parametrize("bf16,quantized", [(True, True), (False, False)], ids=["bf16 training", "not 4-bit"])
def test_the_adapter_is_left_alone_in_bf16_training_or_without_4bit(bf16, quantized):
    from types import SimpleNamespace

    import torch

    model = torch.nn.Linear(2, 2).to(torch.bfloat16)
    model.is_loaded_in_4bit = quantized
    training.adapter_in_training_precision(SimpleNamespace(model=model, args=SimpleNamespace(bf16=bf16)))
    assert model.weight.dtype == torch.bfloat16


def test_the_trained_token_loss_covers_gemma_and_matches_its_own_loss(offline_model, tmp_path):
    """Lesson 02's base model: Gemma-3-270M with a cloned template, its 262k-row output layer run on trained tokens only."""
    import copy

    import torch
    from trl import clone_chat_template

    import helpers

    model, tokenizer = helpers.load_model("offline-base")
    model, tokenizer, _ = clone_chat_template(model, tokenizer, helpers.model_path("offline"))
    assert training._plain_head(model.config)
    batch = _sft_batch((model, tokenizer), tmp_path)
    with torch.no_grad():
        expected = model(**batch, use_cache=False).loss.item()
        got = training.trained_positions_loss(model, batch).item()
    assert abs(expected - got) < 1e-4, (expected, got)
    capped = copy.deepcopy(model.config)
    capped.final_logit_softcapping = 30.0  # a soft-capped head (Gemma 2's) goes through the model's own loss
    assert not training._plain_head(capped)


def _small_gemma3_batch():
    """A 2-layer Gemma 3 with the real classes (its scaled embedding tied to the output layer), random weights,
    and a batch with a padded row: the lookup's code path, in seconds instead of the 270M model's minute."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    model = Gemma3ForCausalLM(Gemma3TextConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                               num_attention_heads=2, num_key_value_heads=1, head_dim=32, pad_token_id=0))
    input_ids = torch.randint(1, 512, (2, 16))
    input_ids[1, -4:] = 0  # the second row padded
    labels = input_ids.masked_fill(input_ids == 0, -100)
    labels[:, :8] = -100  # the prompt: not trained
    return model, {"input_ids": input_ids, "attention_mask": (input_ids != 0).long(), "labels": labels}


@pytest.mark.parametrize("source", ["offline", "gemma3"], ids=["SmolLM2", "Gemma 3's scaled embedding"])
def test_the_embedding_gradient_buffer_changes_where_the_gradient_is_written_not_its_value(source, tmp_path, monkeypatch):
    """Two batches accumulated into `.grad`, as gradient accumulation does: the same gradient with the reused buffer
    as with the stock embedding backward, no lookup gradient for the padding row, and `.grad` never the buffer itself."""
    import torch

    import helpers

    if source == "gemma3":
        model, batch = _small_gemma3_batch()
        assert type(model.get_input_embeddings()).__name__ == "Gemma3TextScaledWordEmbedding"
    else:
        model, tokenizer = helpers.load_model(source)
        batch = _sft_batch((model, tokenizer), tmp_path)
    embedding = model.train().get_input_embeddings()

    def accumulated_gradient():
        model.zero_grad(set_to_none=True)
        for _ in range(2):
            training.trained_positions_loss(model, batch).backward()
        return embedding.weight.grad

    reused = accumulated_gradient().clone()
    buffer = embedding._course_gradient_buffer
    assert embedding.weight.grad.data_ptr() != buffer.data_ptr()
    monkeypatch.setattr(training, "_PLAIN_LOOKUPS", {})  # every class keeps its own forward: the stock backward
    stock = accumulated_gradient()
    assert torch.allclose(reused, stock, rtol=1e-5, atol=1e-7), (reused - stock).abs().max()
    assert reused.abs().sum() > 0 and "forward" not in vars(embedding)  # a gradient came, the class's forward is back
    if embedding.padding_idx is not None and (batch["input_ids"] == embedding.padding_idx).any():
        assert not buffer[embedding.padding_idx].any()  # the lookup's share (the output layer's may be non-zero)


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16 autocast"])
def test_the_output_layer_computes_what_the_linear_layer_does(autocast):
    """The same logits and the same gradients (of the hidden states and of the weight) as `nn.Linear`, in fp32 and
    under the bf16 autocast a CPU with bf16 units trains in."""
    import torch

    model, _ = _small_gemma3_batch()
    head = model.get_output_embeddings()
    hidden = torch.randn(5, head.in_features, requires_grad=True)

    def logits_and_gradients(layer):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = layer(hidden)
        return logits, torch.autograd.grad(logits.float().square().sum(), [hidden, head.weight])

    (stock, stock_grads), (own, own_grads) = logits_and_gradients(head), logits_and_gradients(
        lambda h: training.output_layer(model, h))
    assert own.dtype == stock.dtype == (torch.bfloat16 if autocast else torch.float32)
    assert torch.allclose(own.float(), stock.float(), rtol=1e-5, atol=1e-6)
    for expected, got in zip(stock_grads, own_grads):
        assert got.dtype == expected.dtype and torch.allclose(got, expected, rtol=1e-5, atol=1e-6), (got - expected).abs().max()


def test_an_output_layer_with_an_adapter_keeps_its_own_forward():
    """A LoRA adapter on the output layer (or a 4-bit layer) is not a plain `nn.Linear`: its delta must stay in."""
    import torch
    from peft import LoraConfig, get_peft_model

    model, _ = _small_gemma3_batch()
    get_peft_model(model, LoraConfig(r=2, target_modules=["lm_head"], init_lora_weights=False))
    head = model.get_output_embeddings()
    assert type(head) is not torch.nn.Linear
    hidden = torch.randn(3, head.in_features, requires_grad=True)
    assert torch.equal(training.output_layer(model, hidden), head(hidden))
    assert not torch.equal(head(hidden), hidden @ head.weight.t())  # the adapter changes the logits


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16 autocast"])
def test_the_tied_weights_two_gradients_are_added_in_place(monkeypatch, autocast):
    """In fp32, with the stock output layer autograd adds the embedding's gradient to the output layer's out of place
    (a new weight-sized tensor every step); with the course's, in place. Under bf16 autocast the stock layer's gradient,
    cast back to fp32, is added to in place already. Counted in the profiler: aten::add of the weight's shape."""
    import torch

    model, batch = _small_gemma3_batch()
    model.train()
    size = list(model.get_input_embeddings().weight.shape)

    def out_of_place_adds():
        model.zero_grad(set_to_none=True)
        with torch.profiler.profile(record_shapes=True) as profile:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = training.trained_positions_loss(model, batch)
            loss.backward()
        return sum(e.name == "aten::add" and e.input_shapes[:2] == [size, size] for e in profile.events())

    assert out_of_place_adds() == 0
    monkeypatch.setattr(training, "output_layer", lambda causal_lm, hidden: causal_lm.get_output_embeddings()(hidden))
    assert out_of_place_adds() == (0 if autocast else 1)


def _loss_and_gradients(causal_lm, batch, params):
    import torch

    loss = training.trained_positions_loss(causal_lm, batch)
    return loss.item(), torch.autograd.grad(loss, params)


@pytest.mark.parametrize("source", ["SmolLM2", "SmolLM2 + LoRA", "SmolLM2 + checkpointing", "Gemma 3"])
def test_dropping_the_padding_changes_neither_the_loss_nor_the_gradients(offline_model, tmp_path, source):
    import torch
    from peft import LoraConfig, get_peft_model

    import helpers

    if source == "Gemma 3":
        model, batch = _small_gemma3_batch()
        model.set_attn_implementation("sdpa")
    else:
        batch = _sft_batch(offline_model, tmp_path)
        model = helpers.load_model("offline")[0]  # a fresh copy: other tests' trainers may have set checkpointing on theirs
    if source.endswith("LoRA"):
        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False,
                                                 task_type="CAUSAL_LM"))
    if source.endswith("checkpointing"):  # the backward pass re-runs each layer's attention
        model.gradient_checkpointing_enable()
    causal_lm = model.get_base_model() if source.endswith("LoRA") else model
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    trained = trained[:6] + trained[-2:]
    real_tokens = int(batch["attention_mask"].sum())
    assert real_tokens < batch["input_ids"].numel()  # there is padding to drop
    padded_loss, padded_grads = _loss_and_gradients(causal_lm, batch, trained)
    with training.per_conversation_attention(causal_lm), training.padding_dropped(causal_lm, batch) as row:
        assert row["input_ids"].shape == (1, real_tokens)
        loss, grads = _loss_and_gradients(causal_lm, row, trained)
    assert causal_lm.config._attn_implementation == "sdpa"  # put back after the block
    assert abs(loss - padded_loss) < 1e-5 * max(1.0, padded_loss), (loss, padded_loss)
    for expected, got in zip(padded_grads, grads):
        assert torch.allclose(expected, got, rtol=1e-3, atol=1e-6), (expected - got).abs().max()


def test_under_bf16_autocast_each_conversation_attends_in_fp32(offline_model, tmp_path, monkeypatch):
    """On a CPU with bf16 units the course trains under bf16 autocast, where SDPA would run in bf16 (its backward
    about 2x slower there); the per-conversation attention runs it in fp32 and hands bf16 back. The loss and the
    gradients stay as close to an fp32 step's as the stock bf16 step's are."""
    import torch
    import torch.nn.functional as F

    import helpers

    batch = _sft_batch(offline_model, tmp_path)
    model = helpers.load_model("offline")[0]
    model.train()
    trained = [model.model.layers[3].self_attn.q_proj.weight, model.model.layers[20].mlp.down_proj.weight]
    seen, sdpa = [], F.scaled_dot_product_attention

    def recorded(query, key, value, *args, **kwargs):
        out = sdpa(query, key, value, *args, **kwargs)
        seen.append((query.dtype, key.dtype, value.dtype, torch.is_autocast_enabled("cpu"), out.requires_grad))
        return out

    monkeypatch.setattr(F, "scaled_dot_product_attention", recorded)
    reference_loss, reference_grads = _loss_and_gradients(model, batch, trained)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock_loss, stock_grads = _loss_and_gradients(model, batch, trained)
    assert seen[-1][3]  # the stock attention ran under autocast (so its kernel ran in bf16)
    seen.clear()
    with training.per_conversation_attention(model), training.padding_dropped(model, batch) as row, \
            torch.autocast("cpu", dtype=torch.bfloat16):
        loss, grads = _loss_and_gradients(model, row, trained)
    assert seen and set(seen) == {(torch.float32, torch.float32, torch.float32, False, True)}
    assert abs(loss - reference_loss) <= abs(stock_loss - reference_loss) + 2e-3 * reference_loss
    for reference, stock, got in zip(reference_grads, stock_grads, grads):
        assert (got - reference).norm() <= 1.1 * (stock - reference).norm() + 1e-3 * reference.norm()


def test_the_padding_stays_where_dropping_it_would_change_the_result(offline_model, tmp_path):
    import helpers

    batch = _sft_batch(offline_model, tmp_path)
    model = helpers.load_model("offline")[0]

    def kept(inputs):
        with training.per_conversation_attention(model), training.padding_dropped(model, inputs) as got:
            return got is inputs

    assert not kept(batch)
    assert kept({k: v for k, v in batch.items() if k != "attention_mask"})  # packed rows: no padding to drop
    with training.padding_dropped(model, batch) as got:  # outside per_conversation_attention: SDPA over each row
        assert got is batch
    model.set_attn_implementation("eager")
    assert kept(batch)
    model.set_attn_implementation("sdpa")
    model.config.sliding_window = 8  # every conversation is longer than this window
    assert kept(batch)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_trainers_step_drops_the_padding_with_the_same_loss_and_gradients(offline_model, tmp_path, checkpointing):
    """Through the course's training step: one attention call per conversation and layer, the padded batch's
    loss and gradients, with gradient checkpointing too (its backward pass re-runs the attention)."""
    import copy

    import torch
    from trl import SFTConfig, SFTTrainer

    from helpers import data, templates

    batch = _sft_batch(offline_model, tmp_path)
    model, tokenizer = offline_model
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = templates.training_template()
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, assistant_only_loss=True, use_cpu=True,
                     bf16=False, report_to="none", activation_checkpointing=checkpointing, max_length=256)
    trainer = training.use_trained_token_loss_on_cpu(SFTTrainer(
        model=copy.deepcopy(model), args=args, processing_class=tokenizer,
        train_dataset=data.load_chat_dataset()["train"].select(range(4))))
    trainer.current_gradient_accumulation_steps = 1  # what train() sets before its first step
    if checkpointing:
        trainer.model.gradient_checkpointing_enable()  # as train() does
    layers, weights = trainer.model.config.num_hidden_layers, trainer.model.model.layers[3].self_attn.q_proj.weight

    def step():
        trainer.model.zero_grad()
        with torch.profiler.profile() as profile:
            loss = trainer.training_step(trainer.model, dict(batch)).item()
        calls = sum(e.name == "aten::scaled_dot_product_attention" for e in profile.events())
        return loss, weights.grad.clone(), calls

    loss, grad, calls = step()
    assert calls == layers * batch["input_ids"].size(0) * (2 if checkpointing else 1)
    training.use_trained_token_loss_on_cpu(trainer, drop_padding=False)  # the benchmark's comparison: one call a layer
    padded_loss, padded_grad, padded_calls = step()
    assert padded_calls == layers * (2 if checkpointing else 1)
    assert abs(loss - padded_loss) < 1e-5 * max(1.0, padded_loss), (loss, padded_loss)
    assert torch.allclose(grad, padded_grad, rtol=1e-3, atol=1e-6), (grad - padded_grad).abs().max()


def test_the_step_clock_leaves_out_the_first_steps_start_up(monkeypatch):
    import time as clock_time

    ticks = iter([0.0, 5.0, 7.0, 9.0])  # train begins; steps end at 5 (start-up), 7 and 9
    monkeypatch.setattr(clock_time, "perf_counter", lambda: next(ticks))
    clock = training.step_clock()
    with pytest.raises(ValueError, match="no training step has ended"):
        clock.seconds_per_step()
    clock.on_train_begin(None, None, None)
    clock.on_step_end(None, None, None)
    assert clock.seconds_per_step() == 5.0  # one step: its own time, start-up included
    clock.on_step_end(None, None, None)
    clock.on_step_end(None, None, None)
    assert clock.seconds_per_step() == 2.0  # steps 2 and 3 only
