"""Seconds per training step with glibc's default allocator and with 2 MB pages (`glibc.malloc.hugetlb=1`,
which the Makefile exports), for the lessons' two full fine-tunes.

    .venv/bin/python benchmarks/allocator.py [--steps 10] [--repeats 2]

Each run trains in a fresh process (the setting is read when a process starts): lesson 02's base-model SFT
(Gemma-3-270M with the instruct model's template, whose 262k-row embedding gets a dense gradient every step)
and lesson 02's SFT of SmolLM2-135M-Instruct, the cpu profile's batch, max_length 256, assistant-only loss.
Reports the mean time of steps 2..N and the process's peak memory; the settings alternate, so a slower spell
of a shared machine hits both. About 7 minutes with bf16 units and the defaults. The setting changes where
memory comes from, not a single number the model computes.
"""
import argparse

from helpers.measure import in_fresh_process

SETTINGS = {"glibc default": None, "2 MB pages (hugetlb=1)": "glibc.malloc.hugetlb=1"}  # GLIBC_TUNABLES


def one_run(model: str, steps: int) -> tuple:
    import tempfile

    from trl import SFTConfig, SFTTrainer, clone_chat_template

    import helpers
    from helpers import templates, training
    from helpers.measure import PeakMemory

    cfg = helpers.settings("cpu")
    if model == "base":
        model_, tokenizer = helpers.load_model(cfg.base_model_source)
        with templates.vocab_read_once(tokenizer):
            model_, tokenizer, _ = clone_chat_template(model_, tokenizer, helpers.model_path(cfg.model_source))
    else:
        model_, tokenizer = helpers.load_model(cfg.model_source)
    tokenizer.chat_template = templates.training_template()
    args = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=cfg.batch_size,
                     max_length=cfg.max_length, assistant_only_loss=True, activation_checkpointing=False,
                     save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
                     **helpers.detect_hardware().trainer_precision())
    clock = training.step_clock()
    trainer = SFTTrainer(model=model_, args=args, train_dataset=helpers.load_chat_dataset()["train"],
                         processing_class=tokenizer, callbacks=[clock])
    training.use_trained_token_loss_on_cpu(trainer)
    with PeakMemory() as memory:
        trainer.train()
    return clock.seconds_per_step(), memory.peak_gb


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from helpers.hardware import detect_hardware

    print(f"{detect_hardware().describe()}\n")
    print(f"| model | allocator | s/step (steps 2-{args.steps}), each run | mean | peak memory (GB) |\n|---|---|---|---|---|")
    for model in ("base", "instruct"):
        runs = {name: [] for name in SETTINGS}
        for _ in range(args.repeats):
            for name, tunables in SETTINGS.items():
                runs[name].append(in_fresh_process(one_run, model, args.steps, env={"GLIBC_TUNABLES": tunables}))
        for name, results in runs.items():
            seconds = [s for s, _ in results]
            print(f"| {model} | {name} | {', '.join(f'{s:.2f}' for s in seconds)} | {sum(seconds) / len(seconds):.2f} "
                  f"| {max(p for _, p in results):.2f} |")


if __name__ == "__main__":
    main()
