import os

import pytest

pytest_plugins = ["pytester"]  # tests of the root conftest.py's nbval hook

# The tests run offline, as CI does: nothing may wait on the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# What decides how a process the tests start runs: its threads, the course's and Hugging Face's switches,
# which programs it finds. Libraries set variables of their own once per process, which test first is
# chance (KMP_* on import, TORCHINDUCTOR_CACHE_DIR at torch's first compile): those are left alone.
WATCHED_VARIABLES = ("OMP_", "MKL_", "OPENBLAS_", "TORCH_", "PYTORCH_", "CUDA_", "COURSE_", "HF_", "PATH",
                     "GLIBC_TUNABLES", "LD_PRELOAD", "TCMALLOC_", "PYTHONPATH")


@pytest.fixture(autouse=True)
def environment_left_as_found():
    """A test that changes those variables in this process fails: every later test, and every process it starts,
    would inherit the change. One did: a leaked MKL_NUM_THREADS=2 beside make test's OMP_NUM_THREADS=1 gave
    the subprocesses of later tests a second thread on a busy core, and made them 3-4x slower."""
    before = {name: value for name, value in os.environ.items() if name.startswith(WATCHED_VARIABLES)}
    yield
    after = {name: value for name, value in os.environ.items() if name.startswith(WATCHED_VARIABLES)}
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"the test left os.environ changed: {changed}; use monkeypatch.setenv / delenv"


@pytest.fixture
def fresh_accelerator_state():
    """Accelerate's state is one per process and refuses a second precision: for tests that make an
    `Accelerator` themselves (a Trainer resets it on its own). A trainer that ran earlier in this pytest
    process in fp32, as every trainer on a CPU without bf16 units does, made `Accelerator(bf16)` fail."""
    from helpers.evaluation.lighteval_compat import forget_training_precision

    forget_training_precision()
    yield
    forget_training_precision()  # the next test starts without this one's state


SLOW_FIXTURES = {"offline_model", "pytester"}  # the real model, or a pytest run in a subprocess


def pytest_collection_modifyitems(items):
    """Tests that use the real model or run pytest in a subprocess are `slow` (`make test-fast` leaves them out);
    the others that load a model or execute a notebook say so with `@pytest.mark.slow` themselves."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def write_notebook(path, *sources, parameters: str | None = 'profile = "cpu"\nsteps = 1'):
    """A small notebook on disk: a tagged parameters cell (none if `parameters` is None), then code cells."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    if parameters is not None:
        notebook.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def make_notebook():
    """`make_notebook(path, *cell_sources, parameters=...)`: the shared builder of test notebooks."""
    return write_notebook


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


# CUDA cards mocked on a CPU: what torch reports for a T4, a V100, an A100 and an H100 (compute
# capability, memory). They prove the code paths that depend on the card, not any GPU's speed or memory.
CARDS = {"Tesla T4": ((7, 5), 15.0), "NVIDIA A100-SXM4-40GB": ((8, 0), 40.0), "NVIDIA H100 80GB HBM3": ((9, 0), 80.0),
         "Tesla V100-SXM2-16GB": ((7, 0), 16.0)}


@pytest.fixture
def mock_card(monkeypatch):
    """`mock_card(name)`: torch.cuda answers as the named card of `CARDS` would, for this test."""
    from types import SimpleNamespace

    import torch

    def mock(name):
        capability, memory_gb = CARDS[name]
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=0: capability)
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda device=0: SimpleNamespace(name=name, total_memory=int(memory_gb * 2**30)))
        # torch counts emulation as support: a T4 answers True here, which must not decide the dtype
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return mock
