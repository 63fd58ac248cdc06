import pytest

import helpers
from helpers.profiles import PROFILE_NOTES, PROFILES


def test_every_profile_sets_the_same_parameters():
    keys = {name: set(values) for name, values in PROFILES.items()}
    assert all(k == keys["cpu"] for k in keys.values()), keys
    assert set(PROFILE_NOTES) == set(PROFILES)


def test_none_means_the_profile_value_and_overrides_are_marked():
    cfg = helpers.settings("cpu", model_source=None, max_new_tokens=7)
    assert cfg.model_source == "offline" and cfg.max_new_tokens == 7
    assert cfg.overridden == {"max_new_tokens"}
    (line,) = [line for line in repr(cfg).splitlines() if "max_new_tokens" in line]
    assert line.endswith("(overridden)")


def test_gpu_profiles_use_the_chapters_hub_models():
    assert helpers.settings("colab-t4").model_source == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert helpers.settings("gpu").dataset_source == "HuggingFaceTB/smoltalk"


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown profile 'tpu'.*cpu.*colab-t4.*gpu"):
        helpers.settings("tpu")


def test_unknown_setting_lists_the_valid_ones():
    with pytest.raises(ValueError, match="learning_rat.*Valid settings.*model_source"):
        helpers.settings("cpu", learning_rat=1e-4)


def test_missing_attribute_names_the_settings():
    with pytest.raises(AttributeError, match="model_source"):
        helpers.settings("cpu").model


def test_auto_is_offered_in_the_error_for_an_unknown_profile():
    with pytest.raises(ValueError, match="auto .the one that fits this machine"):
        helpers.resolve_profile("tpu")

