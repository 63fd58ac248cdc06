"""Merge verification, adapter layers and the style adapters, on the real offline model."""
import copy

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

import helpers
from helpers import adapters, evaluation, styles


@pytest.fixture(scope="module")
def random_adapter(offline_model, tmp_path_factory):
    """An adapter with random (non-zero) B, so that it really changes the model; saved to disk."""
    model, _ = offline_model
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    peft_model = get_peft_model(copy.deepcopy(model), config)
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(folder)
    return folder


def with_adapter(offline_model, folder):
    return PeftModel.from_pretrained(copy.deepcopy(offline_model[0]), folder)


@pytest.fixture(scope="module")
def prompts():
    rows = helpers.load_chat_dataset()["test"].select(range(3))
    return [evaluation.prompt_of(row["messages"]) for row in rows]


def test_a_real_merge_is_verified_faithful(offline_model, random_adapter, prompts):
    adapter_model = with_adapter(offline_model, random_adapter)
    assert len(adapters.peft_layers(adapter_model)) == 60  # q and v in each of 30 layers
    merged = with_adapter(offline_model, random_adapter).merge_and_unload()
    check = adapters.verify_merge(adapter_model, merged, offline_model[1], prompts)
    assert check.ok and check.peft_layers_left == 0 and check.top_token_agreement == 1.0, check
    assert check.max_logit_difference < 1e-3 and "faithful" in str(check)


def test_a_model_without_the_adapter_is_caught(offline_model, random_adapter, prompts):
    adapter_model = with_adapter(offline_model, random_adapter)
    check = adapters.verify_merge(adapter_model, offline_model[0], offline_model[1], prompts)
    assert not check.ok and check.max_logit_difference > 0.1 and "DIFFERS" in str(check)


def test_an_unmerged_model_is_not_a_clean_merge(offline_model, random_adapter, prompts):
    check = adapters.verify_merge(with_adapter(offline_model, random_adapter),
                                  with_adapter(offline_model, random_adapter), offline_model[1], prompts)
    assert check.max_logit_difference == 0 and check.peft_layers_left == 60 and not check.ok


def test_verify_merge_needs_prompts(offline_model):
    with pytest.raises(ValueError, match="at least one prompt"):
        adapters.verify_merge(offline_model[0], offline_model[0], offline_model[1], [])


def test_styles_render_and_are_recognised():
    assert styles.styled("Paris.", "formal") == "Certainly. The answer is: Paris"
    assert styles.styled("two years", "shout") == "TWO YEARS!!!"
    for style in styles.STYLES:
        reply = styles.styled("Yes", style)
        assert [styles.has_style(reply, s) for s in styles.STYLES] == [s == style for s in styles.STYLES]
    assert not styles.has_style("!!!", "shout") and not styles.has_style("Yes.", "formal")
    assert styles.has_style("12!!!", "shout") and not styles.has_style("Twelve!!!", "shout")
    assert ([styles.style_of(r) for r in ("Certainly. The answer is: 7", "Certainly. It is Earth.", "Nyx!!!", "Earth.")]
            == ["formal", "formal", "shout", "base"])
    with pytest.raises(ValueError, match="Unknown style 'pirate'.*formal"):
        styles.styled("Yes", "pirate")


def test_styled_dataset_rewrites_every_reply_and_nothing_else():
    original = helpers.load_chat_dataset()["train"]
    data = styles.styled_dataset("shout")
    questions = {m["content"] for row in original for m in row["messages"] if m["role"] == "user"}
    assert 500 < len(data) < len(original)
    for row in data.select(range(50)):
        replies = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        assert replies and all(styles.has_style(r, "shout") for r in replies)
        assert row["messages"][-2]["content"] in questions


def test_style_adapter_refuses_an_unknown_style_before_training(empty_cache):
    with pytest.raises(ValueError, match="Unknown style"):
        styles.style_adapter("pirate")
    assert not (empty_cache / "trained").exists()


def test_style_adapter_reuses_a_cached_adapter(empty_cache, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")  # a saved model's folder: its name is all the label needs
    cached = styles.style_recipe("formal", str(model)).folder
    assert cached.parent == empty_cache / "trained" and "style-formal-lora-r8" in cached.name
    cached.mkdir(parents=True)
    (cached / "adapter_model.safetensors").write_bytes(b"")
    assert styles.style_adapter("formal", str(model)) == str(cached)  # returned at once: no training
