"""Cached recipes: one folder per setting that changes the weights; lesson 05 takes lessons 02/03's own
models, never the side trainings saved beside them."""
import dataclasses
import json
import os
import time

import pytest

from helpers import recipes


def saved(folder, marker):
    folder.mkdir(parents=True)
    (folder / marker).write_bytes(b"x")
    return folder


def test_the_newest_lesson_run_is_taken_and_side_folders_are_not(tmp_path):
    saved(tmp_path / "02_sft", "model.safetensors")
    second = saved(tmp_path / "02_sft-2", "model.safetensors")
    for side in ("02_sft-cli", "02_sft-packing"):  # lesson 02's `trl sft` demo and packing comparison
        newer = saved(tmp_path / side, "model.safetensors")
        os.utime(newer / "model.safetensors", (time.time() + 60, time.time() + 60))
    assert recipes.newest_output("02_sft", "model.safetensors", roots=[tmp_path]) == second


def test_the_lora_adapter_is_taken_from_its_subfolder(tmp_path):
    adapter = saved(tmp_path / "03_lora" / "LoRA", "adapter_model.safetensors")
    saved(tmp_path / "03_lora" / "QLoRA", "adapter_model.safetensors")
    assert recipes.newest_output("03_lora", "adapter_model.safetensors", inside="LoRA",
                                       roots=[tmp_path]) == adapter
    assert recipes.newest_output("02_sft", "model.safetensors", roots=[tmp_path / "none"]) is None


def a_saved_model(folder):
    """A folder `model_path` takes for a saved model (the labels need only its name)."""
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return str(folder)


def test_every_setting_that_changes_the_weights_gets_its_own_folder(empty_cache, tmp_path):
    recipe = recipes.Recipe("chat", 1e-4, model_source=a_saved_model(tmp_path / "model"))
    variants = [dataclasses.replace(recipe, **change) for change in
                ({"data": "style-formal"}, {"learning_rate": 2e-4}, {"steps": 8}, {"batch_size": 2}, {"lora_r": 8},
                 {"dataset_source": "HuggingFaceTB/smoltalk", "dataset_config": "everyday-conversations"})]
    folders = {recipe.folder, *(v.folder for v in variants)}
    assert len(folders) == 7 and all(f.parent == empty_cache / "trained" for f in folders)


def test_unknown_recipe_data_fails_before_anything_is_written(empty_cache, tmp_path):
    with pytest.raises(ValueError, match="Unknown recipe data 'pirates'"):
        recipes.Recipe("pirates", 1e-4, model_source=a_saved_model(tmp_path / "model")).trained()
    assert not (empty_cache / "trained").exists()


def model_config(folder, layers, hidden=576):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": hidden,
                                                    "num_hidden_layers": layers, "vocab_size": 49152}))
    return str(folder)


def test_lesson_outputs_of_another_profiles_model_are_not_taken(tmp_path):
    # lesson 05 under `gpu` (1.7B) must not put lesson 03's 135M adapter from an earlier cpu run on its base
    small, large = model_config(tmp_path / "135M", 30), model_config(tmp_path / "1.7B", 24, hidden=2048)
    sft = saved(tmp_path / "outputs" / "02_sft", "model.safetensors")
    model_config(sft, 30)
    adapter = saved(tmp_path / "outputs" / "03_lora" / "LoRA", "adapter_model.safetensors")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": small}))
    roots = [tmp_path / "outputs"]
    assert recipes.newest_output("02_sft", "model.safetensors", roots=roots, base_model=small) == sft
    assert recipes.newest_output("02_sft", "model.safetensors", roots=roots, base_model=large) is None
    found = recipes.newest_output("03_lora", "adapter_model.safetensors", inside="LoRA", roots=roots, base_model=small)
    assert found == adapter
    assert recipes.newest_output("03_lora", "adapter_model.safetensors", inside="LoRA", roots=roots, base_model=large) is None
    moved = model_config(tmp_path / "another-cache" / "135M", 30)  # the same model under another path still counts
    assert recipes.same_base(adapter, moved) and not recipes.same_base(adapter, str(tmp_path / "missing"))


def test_each_profile_trains_its_own_recipe():
    from helpers import settings
    cpu, t4 = (recipes.Recipe.for_lesson(settings(name), lora=True) for name in ("cpu", "colab-t4"))
    assert (cpu.model_source, cpu.dataset_source, cpu.steps) == ("offline", "offline", 16)
    assert (t4.model_source, t4.dataset_source, t4.dataset_config, t4.steps, t4.lora_r) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/smoltalk", "everyday-conversations", 300, 16)
    full = recipes.Recipe.for_lesson(settings("cpu"), lora=False)
    assert full.lora_r is None and full.learning_rate == settings("cpu").learning_rate


def test_two_processes_that_need_the_same_model_at_once_train_it_once(empty_cache, tmp_path, monkeypatch):
    import threading

    trainings = []

    def slow_training(recipe, dataset, destination):  # stands in for a minute of training
        trainings.append(destination)
        time.sleep(0.5)
        (destination / "model.safetensors").write_bytes(b"x")

    monkeypatch.setattr(recipes, "_train", slow_training)
    monkeypatch.setattr(recipes.Recipe, "dataset", lambda self: [])
    recipe = recipes.Recipe("chat", 1e-4, model_source=a_saved_model(tmp_path / "model"))
    found = []
    workers = [threading.Thread(target=lambda: found.append(recipe.trained())) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(trainings) == 1 and found == [str(recipe.folder)] * 2
