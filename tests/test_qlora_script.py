"""scripts/qlora_sft.py, the chapter's quick-reference workflow, as one process and as two under
`accelerate launch` (two CPU processes over gloo stand in for two GPUs: this proves the script's data
parallelism, not a GPU's speed)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from helpers import hardware
from helpers.course import COURSE_ROOT

pytestmark = pytest.mark.slow  # trains the real model

SCRIPT = COURSE_ROOT / "scripts" / "qlora_sft.py"
SHORT = ["--max_steps", "2", "--per_device_batch_size", "2", "--max_length", "128"]
LINE = re.compile(r"process (\d) of (\d): final train loss ([\d.]+), first batch (\w+), adapter (\w+)")


def test_two_processes_train_on_different_data_and_hold_the_same_adapter(tmp_path):
    four_bit = [] if hardware.four_bit_problem() is None else ["--load_in_4bit", "false"]
    launch = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    finished = subprocess.run([*launch, str(SCRIPT), *SHORT, *four_bit, "--output_dir", str(tmp_path / "adapter")],
                              capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    processes = {int(m[0]): m for m in LINE.findall(finished.stdout)}
    assert sorted(processes) == [0, 1] and {m[1] for m in processes.values()} == {"2"}, finished.stdout[-2000:]
    assert processes[0][3] != processes[1][3]  # each process trained on its own share of every batch ...
    assert processes[0][4] == processes[1][4]  # ... and both hold the same adapter: the gradients were shared
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in weights.items())  # B starts at zero


def test_the_fsdp_config_loads_and_the_script_loads_a_shardable_model(monkeypatch):
    """accelerate's FSDP needs a GPU, so this checks the config and the script's loading choices, not training."""
    import importlib.util

    import torch
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DistributedType

    config = ClusterConfig.from_yaml_file(str(SCRIPT.parent / "fsdp_qlora.yaml"))
    assert config.distributed_type == DistributedType.FSDP and config.fsdp_config["fsdp_use_orig_params"] is False
    spec = importlib.util.spec_from_file_location("qlora_sft", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    calls = []
    monkeypatch.setattr(script.AutoModelForCausalLM, "from_pretrained", lambda path, **kw: calls.append(kw))
    monkeypatch.setattr(script.AutoTokenizer, "from_pretrained", lambda path: None)
    for kind in (DistributedType.FSDP, DistributedType.MULTI_CPU):
        state = type("State", (), {"distributed_type": kind, "process_index": 0})()
        script.load_quantized(script.Config(), state)
    sharded, copies = calls
    assert sharded["device_map"] is None and sharded["quantization_config"].bnb_4bit_quant_storage != torch.uint8
    assert copies["device_map"] == {"": "cpu"} and copies["quantization_config"].bnb_4bit_quant_storage == torch.uint8
