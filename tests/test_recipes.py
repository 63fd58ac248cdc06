"""Cached recipes: one folder per setting that changes the weights; lesson 05 takes lessons 02/03's own
models, never the side trainings saved beside them."""
import dataclasses
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
                ({"data": "style-formal"}, {"learning_rate": 2e-4}, {"steps": 8}, {"batch_size": 2}, {"lora_r": 8})]
    folders = {recipe.folder, *(v.folder for v in variants)}
    assert len(folders) == 6 and all(f.parent == empty_cache / "trained" for f in folders)


def test_unknown_recipe_data_fails_before_anything_is_written(empty_cache, tmp_path):
    with pytest.raises(ValueError, match="Unknown recipe data 'pirates'"):
        recipes.Recipe("pirates", 1e-4, model_source=a_saved_model(tmp_path / "model")).trained()
    assert not (empty_cache / "trained").exists()
