"""A local Hugging Face cache that serves a Hub profile's models and data by their Hub names, offline.

The `colab-t4` profile names Hub repositories (`HuggingFaceTB/SmolLM2-135M-Instruct`,
`HuggingFaceTB/smoltalk`, ...) that no machine of this project can download. `build(home)` writes,
under `home` (use it as `HF_HOME`), what a learner's own cache holds after a first online run:

- each model the profile names, in the Hub cache layout (`hub/models--org--name/snapshots/<commit>`),
  so `from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")` with `HF_HUB_OFFLINE=1` goes through
  transformers' real Hub resolution;
- the profile's dataset config as `load_dataset` caches it (`datasets/org___name/<config>/...`),
  which `load_dataset("HuggingFaceTB/smoltalk", "everyday-conversations")` reads offline.

**What it simulates, and what not.** Every model is a stand-in: the course's offline
SmolLM2-135M-Instruct under each name (the chapter's instruct model is that model; the base model's
stand-in drops the chat template, as a base model has none; the 1.7B judge is the 135M model). The
dataset is a few hundred of the course's own conversations in smoltalk's `messages` format, not
smoltalk. It proves the Hub code paths of a profile (names, loading, data format), not its models'
quality, memory or speed.
"""
import json
import shutil
from pathlib import Path

COMMIT = "0" * 40  # a snapshot name: the cache layout wants one; no real commit is claimed
DATA_COMMIT = "1" * 40
CHAT_TEMPLATE_FILES = ("chat_template.jinja",)


def build(home, profile: str = "colab-t4", train_rows: int = 300, test_rows: int = 100) -> dict:
    """Write the local cache for `profile` under `home`; return the environment that uses it."""
    from ..profiles import PROFILES

    home, values = Path(home), PROFILES[profile]
    base_id = values["base_model_source"]
    for repo_id in {values["model_source"], base_id, values["judge_model_source"]}:
        put_model(home, repo_id, chat_template=repo_id != base_id)
    put_chat_dataset(home, values["dataset_source"], values["dataset_config"], train_rows, test_rows)
    return environment(home)


def environment(home) -> dict:
    """The variables that make the Hub libraries read only this cache (set them before importing them)."""
    return {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def put_model(home: Path, repo_id: str, chat_template: bool = True) -> Path:
    """The offline instruct model's files as the Hub cache's snapshot of `repo_id`."""
    from ..models import model_path

    source = Path(model_path("offline"))
    repo = Path(home) / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for file in source.iterdir():
        if file.suffix in (".json", ".jinja", ".safetensors", ".txt") and file.name != "course_cache.json":
            if chat_template or file.name not in CHAT_TEMPLATE_FILES:
                shutil.copy(file, snapshot / file.name)
    if not chat_template:  # a base model: no template anywhere in its tokenizer files
        config_file = snapshot / "tokenizer_config.json"
        config = json.loads(config_file.read_text())
        config.pop("chat_template", None)
        config_file.write_text(json.dumps(config, indent=2))
    return snapshot


def put_chat_dataset(home: Path, repo_id: str, config: str, train_rows: int, test_rows: int) -> Path:
    """The course's conversations (`messages` only) cached as `load_dataset(repo_id, config)` caches them."""
    from datasets.data_files import DataFilesDict
    from datasets.packaged_modules.parquet.parquet import Parquet

    from ..data import load_chat_dataset

    namespace, name = repo_id.split("/")
    staging = Path(home) / "staging" / name
    staging.mkdir(parents=True, exist_ok=True)
    data = load_chat_dataset("offline")
    files = {}
    for split, rows in (("train", train_rows), ("test", test_rows)):
        files[split] = [str(staging / f"{split}.parquet")]
        data[split].select(range(min(rows, len(data[split])))).select_columns(["messages"]).to_parquet(files[split][0])
    cache = Path(home) / "datasets"
    builder = Parquet(cache_dir=str(cache), dataset_name=name, config_name=config, hash=DATA_COMMIT,
                      data_files=DataFilesDict.from_patterns(files))
    builder.download_and_prepare()
    # the builder names its folders after the local files; load_dataset(repo_id) looks for these names
    built = Path(builder.cache_dir)
    target = cache / f"{namespace}___{name}" / config / built.parent.name / built.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(built), str(target))
    shutil.rmtree(cache / name, ignore_errors=True)
    shutil.rmtree(staging.parent, ignore_errors=True)
    return target
