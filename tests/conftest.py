import os

import pytest

pytest_plugins = ["pytester"]  # tests of the root conftest.py's nbval hook

# The tests run offline, as CI does: nothing may wait on the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def offline_model():
    """The real offline model and tokenizer (SmolLM2-135M-Instruct), loaded once per test run."""
    import helpers

    return helpers.load_model("offline")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A fresh, empty model cache for tests of the conversion mechanism."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
