"""What a lesson's adapter cells say about transformers and peft releases that do not fit together."""
import importlib.metadata

import transformers.integrations.peft

from helpers import versions


def transformers_add_adapter_works() -> bool:
    """Ask transformers itself, on a tiny model built from a config (no download)."""
    from peft import LoraConfig
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, vocab_size=64))
    try:
        tiny.add_adapter(LoraConfig(r=2, target_modules=["q_proj"]))
        return True
    except ValueError:
        return False


def test_the_verdict_on_the_installed_pair_is_what_transformers_does(capsys):
    # on the course's pins both work; under `make test-latest` (transformers 5.24, peft 0.21.2) both say no
    works = transformers_add_adapter_works()
    assert (versions.adapter_methods_problem() is None) == works
    versions.print_adapter_support()
    assert capsys.readouterr().out.startswith("transformers " if works else "Warning: transformers ")


def test_an_upgraded_transformers_that_needs_an_unpublished_peft_is_named_with_the_fix(monkeypatch, capsys):
    # what transformers 5.24.0 does with peft 0.21.2 (measured by make test-latest, 2026-12-02)
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "5.24.0" if name == "transformers" else real(name))
    monkeypatch.setattr(transformers.integrations.peft, "MIN_PEFT_VERSION", "0.22.0")
    problem = versions.adapter_methods_problem()
    assert problem.startswith("transformers 5.24.0 needs peft >= 0.22.0 for its own adapter methods")
    assert "this is peft 0.21.2, so they raise" in problem and "pip install transformers==5.23.0 peft==0.21.2" in problem
    versions.print_adapter_support()
    assert capsys.readouterr().out.startswith("Warning: transformers 5.24.0 needs peft >= 0.22.0")
