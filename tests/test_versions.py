"""What a lesson's adapter cells say about transformers and peft releases that do not fit together."""
import importlib.metadata

import transformers.integrations.peft

from helpers import versions


def test_the_course_pins_fit_together(capsys):
    assert versions.adapter_methods_problem() is None
    versions.print_adapter_support()
    assert capsys.readouterr().out.startswith("transformers 5.23.0 and peft 0.21.2: PeftModel and")


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
