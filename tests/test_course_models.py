"""Lesson 05 takes lessons 02/03's own models, never the side trainings saved beside them."""
import os
import time

from helpers import course_models


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
    assert course_models.newest_output("02_sft", "model.safetensors", roots=[tmp_path]) == second


def test_the_lora_adapter_is_taken_from_its_subfolder(tmp_path):
    adapter = saved(tmp_path / "03_lora" / "LoRA", "adapter_model.safetensors")
    saved(tmp_path / "03_lora" / "QLoRA", "adapter_model.safetensors")
    assert course_models.newest_output("03_lora", "adapter_model.safetensors", inside="LoRA",
                                       roots=[tmp_path]) == adapter
    assert course_models.newest_output("02_sft", "model.safetensors", roots=[tmp_path / "none"]) is None
