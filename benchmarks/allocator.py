"""Seconds per training step with glibc's default allocator, with 2 MB pages (`glibc.malloc.hugetlb=1`) and
with 2 MB pages and the heap kept between steps (what the Makefile exports), each with the stock embedding
backward (a fresh zeroed gradient the size of the embedding every step) and with the course's one reused
buffer (`training.embedding_gradient_in_one_buffer`), and with the stock output layer (whose weight gradient
autograd adds the embedding's to out of place, into a new weight-sized tensor) or the course's
(`training.output_layer`, added in place), for the lessons' two full fine-tunes.

    .venv/bin/python benchmarks/allocator.py [--steps 10] [--repeats 2] [--only TEXT]

Each run trains in a fresh process (the setting is read when a process starts): lesson 02's base-model SFT
(Gemma-3-270M with the instruct model's template, whose 262k-row embedding gets a dense gradient every step)
and lesson 02's SFT of SmolLM2-135M-Instruct, the cpu profile's batch, max_length 256, assistant-only loss.
Reports the mean time of steps 2..N and the process's peak memory; the settings alternate, so a slower spell
of a shared machine hits each. About 25 minutes with bf16 units and the defaults (6 settings). The settings
change where memory comes from, not a single number the model computes (the buffer and the output layer:
tests/test_training.py).
"""
import argparse

from helpers.measure import in_fresh_process

# name -> (GLIBC_TUNABLES, whether the embedding's gradient goes into the course's one buffer, whether the
# output layer is the course's)
PAGES = "glibc.malloc.hugetlb=1"
# blocks up to 32 MB (glibc's limit) from the heap, and the heap never handed back to the system between steps
HEAP_KEPT = ":glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
SETTINGS = {"glibc default": (None, False, False), "2 MB pages (hugetlb=1)": (PAGES, False, False),
            "glibc default + one gradient buffer": (None, True, False),
            "2 MB pages + one gradient buffer": (PAGES, True, False),
            "2 MB pages + one gradient buffer + own output-layer gradient": (PAGES, True, True),
            "2 MB pages, heap kept + one gradient buffer + own output-layer gradient (the course's)":
                (PAGES + HEAP_KEPT, True, True)}


def one_run(model: str, steps: int, gradient_buffer: bool = True, own_output_gradient: bool = True) -> tuple:
    import tempfile

    from trl import SFTConfig, SFTTrainer, clone_chat_template

    import helpers
    from helpers import templates, training
    from helpers.measure import PeakMemory

    if not gradient_buffer:  # no embedding class is taken for a plain lookup: each keeps its stock backward
        training._PLAIN_LOOKUPS = {}
    if not own_output_gradient:  # nn.Linear's own backward
        training.output_layer = lambda causal_lm, hidden: causal_lm.get_output_embeddings()(hidden)
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
    parser.add_argument("--only", default="", help="run the settings whose name contains this text")
    args = parser.parse_args()
    settings = {name: setting for name, setting in SETTINGS.items() if args.only in name}
    from helpers.hardware import detect_hardware

    print(f"{detect_hardware().describe()}\n")
    print(f"| model | allocator, embedding gradient | s/step (steps 2-{args.steps}), each run | mean | peak memory (GB) |\n|---|---|---|---|---|")
    for model in ("base", "instruct"):
        runs = {name: [] for name in settings}
        for _ in range(args.repeats):
            for name, (tunables, gradient_buffer, own_output_gradient) in settings.items():
                runs[name].append(in_fresh_process(one_run, model, args.steps, gradient_buffer, own_output_gradient,
                                                   env={"GLIBC_TUNABLES": tunables}))
        for name, results in runs.items():
            seconds = [s for s, _ in results]
            print(f"| {model} | {name} | {', '.join(f'{s:.2f}' for s in seconds)} | {sum(seconds) / len(seconds):.2f} "
                  f"| {max(p for _, p in results):.2f} |")


if __name__ == "__main__":
    main()
