"""cpu_decoding.fast_decoding: the same logits and greedy replies, on the real offline model; only fp32 products
without gradient take the fast paths, and every layer gets its own forward back."""
import copy
from contextlib import nullcontext
from unittest import mock

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.layer import Linear as LoraLinear

import helpers
from helpers import evaluation
from helpers.cpu_decoding import MAX_ROWS, PACKED_FROM_ROWS, fast_decoding


@pytest.fixture(scope="module")
def held_out_prompts():
    questions = evaluation.held_out_questions(helpers.load_chat_dataset()["test"], 16)
    return [evaluation.prompt_of(q["messages"]) for q in questions]


def _linear_calls(block):
    """How many times F.linear ran inside `block()`, and its result."""
    with mock.patch("torch.nn.functional.linear", wraps=torch.nn.functional.linear) as linear:
        result = block()
    return linear.call_count, result


@pytest.mark.parametrize("onednn", [True, False], ids=["oneDNN", "no oneDNN"])
@pytest.mark.parametrize("rows", [1, 2, 7, 16, 300])  # decoding steps, and a prompt's prefill
def test_a_product_gives_the_same_logits_without_the_stock_product(offline_model, rows, onednn):
    model, _ = offline_model
    torch.manual_seed(0)
    hidden = torch.randn(rows, 1, model.config.hidden_size)
    layers = [model.lm_head, model.model.layers[0].mlp.up_proj, model.model.layers[0].mlp.down_proj]
    for layer in layers:
        x = hidden if layer.in_features == hidden.shape[-1] else torch.randn(rows, 1, layer.in_features)
        with torch.no_grad(), mock.patch("torch.backends.mkldnn.is_available", return_value=onednn):
            expected = layer(x)
            with fast_decoding(model):
                first = layer(x)  # from 5 rows oneDNN's copy of the weight is made at the second product
                calls, got = _linear_calls(lambda: layer(x))
                assert ("packed" in vars(layer).get("_onednn_weight", {})) == (onednn and rows >= PACKED_FROM_ROWS)
        stock_product = rows > MAX_ROWS and not onednn  # a prefill without oneDNN: the layer's own product
        assert calls == stock_product, "the fast path did not run"
        assert got.shape == expected.shape and got.is_contiguous()
        for result in (first, got):
            torch.testing.assert_close(result, expected, rtol=1e-4, atol=1e-4)  # fp32 rounding: another summation order


def test_greedy_replies_are_the_same_word_for_word(offline_model, held_out_prompts):
    model, tokenizer = offline_model
    for batch_size in (16, 7, 1):  # one step's rows: even, odd, one
        prompts = held_out_prompts[:batch_size] if batch_size > 1 else held_out_prompts[:2]
        with mock.patch("helpers.evaluation.replies.fast_decoding", nullcontext):  # the stock product
            stock = evaluation.generate_replies(model, tokenizer, prompts, max_new_tokens=24, batch_size=batch_size)
        fast = evaluation.generate_replies(model, tokenizer, prompts, max_new_tokens=24, batch_size=batch_size)
        assert fast == stock


@pytest.fixture(scope="module")
def peft_model(offline_model):
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    return get_peft_model(copy.deepcopy(offline_model[0]), config).eval()


def _peft_forwards(block):
    """How many times PEFT's own LoRA forward ran inside `block()`, and its result."""
    with mock.patch.object(LoraLinear, "forward", autospec=True, side_effect=LoraLinear.forward) as forward:
        result = block()
    return forward.call_count, result


@pytest.mark.parametrize("prompts", [1, 7])  # one decoding step's rows after a 2-row or a 7-row prefill
def test_an_adapter_model_takes_the_fast_paths_and_gives_the_same_logits(offline_model, peft_model, prompts):
    tokenizer = offline_model[1]
    texts = ["The capital of France is", "Two and two make", "Water boils at", "The sun is a", "Cats are",
             "A week has", "Seven is"][:max(2, prompts)]
    inputs = tokenizer(texts, return_tensors="pt", padding=True)
    rows = len(texts)
    with torch.no_grad():
        prefill = peft_model(**inputs, use_cache=True)
        step = {"input_ids": torch.arange(11, 11 + rows)[:, None], "past_key_values": prefill.past_key_values,
                "attention_mask": torch.cat([inputs["attention_mask"], torch.ones(rows, 1, dtype=torch.long)], 1)}
        expected = peft_model(**copy.deepcopy(step)).logits
        with fast_decoding(peft_model):
            peft_calls, fast_prefill = _peft_forwards(lambda: peft_model(**inputs, use_cache=True).logits)
            calls, got = _linear_calls(lambda: peft_model(**copy.deepcopy(step)).logits)
    for result, reference in ((fast_prefill, prefill.logits), (got, expected)):
        torch.testing.assert_close(result, reference, rtol=1e-4, atol=1e-4)  # fp32 rounding: another summation order
    assert calls == 0 and peft_calls == 0, "PEFT's or the stock forward ran"


def test_greedy_replies_with_an_adapter_are_the_same_word_for_word(offline_model, peft_model, held_out_prompts):
    tokenizer = offline_model[1]
    prompts = held_out_prompts[:7]
    with mock.patch("helpers.evaluation.replies.fast_decoding", nullcontext):  # PEFT's forward, the stock product
        stock = evaluation.generate_replies(peft_model, tokenizer, prompts, max_new_tokens=24, batch_size=7)
    assert evaluation.generate_replies(peft_model, tokenizer, prompts, max_new_tokens=24, batch_size=7) == stock


@pytest.mark.parametrize("case", ["adapters disabled", "merged", "dropout while training", "adapter_names", "gradient"])
def test_an_adapter_layer_runs_peft_s_forward_where_the_sum_is_not_plain_lora(case):
    torch.manual_seed(0)
    dropout = 0.5 if case == "dropout while training" else 0.0
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["0"], lora_dropout=dropout, init_lora_weights=False)
    model = get_peft_model(torch.nn.Sequential(torch.nn.Linear(8, 16)), config)
    model.train(case == "dropout while training")
    layer = model.base_model.model[0]
    x = torch.randn(3, 8)
    kwargs = {"adapter_names": ["default"] * 3} if case == "adapter_names" else {}
    disabled = model.disable_adapter() if case == "adapters disabled" else nullcontext()
    if case == "merged":
        model.merge_adapter()
    with torch.set_grad_enabled(case == "gradient"), disabled:
        torch.manual_seed(1)
        expected = layer(x, **kwargs)
        with fast_decoding(model):
            torch.manual_seed(1)  # the same dropout mask
            calls, got = _peft_forwards(lambda: layer(x, **kwargs))
    assert calls == 1
    assert torch.equal(got, expected)


@pytest.mark.parametrize("case", ["gradient", "autocast", "bf16 weights"])
def test_anything_but_fp32_rows_without_gradient_runs_the_layers_own_product(case):
    layer = torch.nn.Linear(8, 32, dtype=torch.bfloat16 if case == "bf16 weights" else torch.float32)
    model = torch.nn.Sequential(layer)
    rows = 3
    x = torch.randn(rows, 8, dtype=layer.weight.dtype)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=case == "autocast")
    with torch.set_grad_enabled(case == "gradient"), autocast, fast_decoding(model):
        calls, got = _linear_calls(lambda: model(x))
    assert calls == 1
    with torch.set_grad_enabled(case == "gradient"), autocast:
        assert torch.equal(got, layer(x))


def test_every_layer_gets_its_own_forward_back_even_after_an_error():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(RuntimeError, match="inside"):
        with fast_decoding(model):
            assert all("forward" in vars(m) for m in model if isinstance(m, torch.nn.Linear))
            with fast_decoding(model):  # nested: the inner block leaves the outer one's in place
                pass
            assert all("forward" in vars(m) for m in model if isinstance(m, torch.nn.Linear))
            raise RuntimeError("inside")
    assert not any("forward" in vars(m) for m in model)


def test_a_layer_with_a_bias_adds_it():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32))
    x = torch.randn(3, 8)
    with torch.no_grad():
        expected = model(x)
        with fast_decoding(model):
            calls, got = _linear_calls(lambda: model(x))
    assert calls == 0
    torch.testing.assert_close(got, expected)


def test_a_weight_changed_inside_the_block_is_multiplied_as_it_is_now():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 32)
    x = torch.randn(PACKED_FROM_ROWS, 8)  # enough rows for oneDNN's copy of the weight
    with torch.no_grad(), fast_decoding(layer):
        layer(x)
        before = layer(x)
        assert "packed" in vars(layer)["_onednn_weight"], "no oneDNN copy was made"
        layer.weight.mul_(2)  # in place: the copy made for the second product is out of date
        after = layer(x)
        layer.weight = torch.nn.Parameter(torch.ones(32, 8))  # a new tensor
        replaced = layer(x)
    torch.testing.assert_close(after - layer.bias, 2 * (before - layer.bias))
    torch.testing.assert_close(replaced, x @ torch.ones(8, 32) + layer.bias)
    assert "_onednn_weight" not in vars(layer), "the copy outlived the block"
