"""The README's training-speed sections quote `benchmarks/training_speed.py`'s results files: every table
row, and the figures the AVX512-BF16 section states in its prose, come from those files."""
import json
import re
from pathlib import Path

import pytest

from helpers.course import course_times

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The README's text under `### title`, up to the next heading (or lora_memory.py's own table)."""
    text = README[README.index(f"### {title}\n"):]
    return re.split(r"\n#{2,3} |\n`lora_memory.py`", text)[0]


@pytest.mark.parametrize("title, kind", [("A CPU without bf16 units (AVX2)", "cpu-avx2"),
                                         ("A CPU with AVX512-BF16 but no AMX", "cpu-avx512-bf16"),
                                         ("A CPU with bf16 units (AMX)", "cpu-amx")])
def test_each_speed_table_in_the_readme_is_its_results_files_own(title, kind):
    text = section(title)
    assert f"training-speed-{kind}.md" in text
    saved = (RESULTS / f"training-speed-{kind}.md").read_text().splitlines()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| path", "| evaluation"))]
    assert rows, f"no table under {title!r}"
    assert not [row for row in rows if row not in saved], f"rows under {title!r} not in training-speed-{kind}.md"


def test_the_avx512_bf16_sections_figures_are_computed_from_the_results():
    text = re.sub(r"\s+", " ", section("A CPU with AVX512-BF16 but no AMX"))
    here, amx = (json.loads((RESULTS / f"training-speed-{kind}.json").read_text()) for kind in ("cpu-avx512-bf16", "cpu-amx"))
    flops = {kind: {k: round(v / 1e9) for k, v in data["matmul_flops"].items()} for kind, data in (("here", here), ("amx", amx))}
    assert f"{flops['here']['fp32']} GFLOP/s in fp32 and {flops['here']['bf16']} in bf16" in text
    assert f"against {flops['amx']['fp32']} and {flops['amx']['bf16']:,} on the AMX Xeon" in text

    def row(data, start):
        return next(r for r in data["training"] if r["name"].startswith(start))
    plain, course, fp32 = (row(here, s) for s in ("plain TRL", "course default", "course, but fp32"))
    packed, lora, qlora = (row(here, s) for s in ("course, but packed", "LoRA r=8 (course", "QLoRA r=8 (course"))
    ratio = course["tokens_per_second"] / plain["tokens_per_second"]
    assert f"default path is {ratio:.1f}x plain TRL here**, at {course['mfu']:.0%} of the bf16" in text
    assert f"({fp32['mfu']:.0%} of the fp32 one on the fp32 path)" in text
    amx_gain = row(amx, "course default")["tokens_per_second"] / row(amx, "course, but fp32")["tokens_per_second"]
    assert f"buys {course['tokens_per_second'] / fp32['tokens_per_second']:.1f}x over fp32 on these units, not AMX's {amx_gain:.1f}x" in text
    padded = row(here, "course, but pad positions computed")
    assert f"buys {course['tokens_per_second'] / padded['tokens_per_second']:.2f}x on these 10 steps " \
           f"({course['tokens_per_second']:.0f} against {padded['tokens_per_second']:.0f} tokens/s" in text
    assert packed["tokens_per_second"] < course["tokens_per_second"]
    assert f"slower per token than the padding-dropped batches ({packed['tokens_per_second']:.0f})" in text
    assert f"LoRA is {lora['tokens_per_second'] / plain['tokens_per_second']:.1f}x plain TRL and QLoRA " \
           f"{qlora['tokens_per_second'] / plain['tokens_per_second']:.1f}x" in text
    totals = {kind: course_times.total_seconds(rows.values())
              for kind, (_, rows) in course_times.measured(RESULTS).items()}
    assert f"the course takes {totals['cpu-avx512-bf16'] / totals['cpu-amx']:.1f}x as long here" in text


def test_the_2mb_pages_figures_are_the_allocator_results_files_own():
    text = re.sub(r"\s+", " ", README[README.index("**2 MB pages, and the heap kept.**"):])

    def means(kind, model):
        return [line.split("|")[4].strip() for line in (RESULTS / f"allocator-{kind}.md").read_text().splitlines()
                if line.startswith(f"| {model} |")]

    bf16, avx2 = means("cpu-avx512-bf16", "base"), means("cpu-avx2-emulated", "base")
    assert f"from {bf16[0]} to {bf16[1]} s a step on the AMD EPYC with its bf16 units" in text  # glibc default, 2 MB pages
    assert f"from {avx2[0]} to {avx2[1]} with torch limited to AVX2" in text
    instruct = means("cpu-avx512-bf16", "instruct")  # the file's last table: without, then with the heap kept
    assert f"instruct model's step from {instruct[-2]} to {instruct[-1]} s and the base model's from {bf16[-2]} to " \
           f"{bf16[-1]} with the bf16 units" in text


def test_the_avx2_stand_ins_figures_are_computed_from_its_results():
    """What the README says of the run with torch limited to AVX2, and of the dropped padding, from the files."""
    text = re.sub(r"\s+", " ", README)
    here, bf16 = (json.loads((RESULTS / f"training-speed-{kind}.json").read_text())
                  for kind in ("cpu-avx2-emulated", "cpu-avx512-bf16"))

    def row(data, start):
        return next(r for r in data["training"] if r["name"].startswith(start))
    plain, course, padded = (row(here, s) for s in ("plain TRL", "course default", "course, but pad positions"))
    lora = row(here, "LoRA r=8 (course")
    qlora = [row(here, s)["tokens_per_second"] for s in ("QLoRA r=8 (course", "QLoRA r=8, bitsandbytes")]
    tokens = {name: f"{r['tokens_per_second']:.0f}" for name, r in (("plain", plain), ("course", course),
                                                                      ("padded", padded), ("lora", lora))}
    assert f"course's path is {course['tokens_per_second'] / plain['tokens_per_second']:.1f}x plain TRL** " \
           f"({tokens['course']} against {tokens['plain']} tokens/s) and LoRA " \
           f"{lora['tokens_per_second'] / plain['tokens_per_second']:.1f}x" in text
    assert f"6N MFU reads {course['mfu']:.0%} of the measured fp32 ceiling" in text
    assert f"the body alone ran at {course['mfu_body']:.0%}" in text
    gain = course["tokens_per_second"] / padded["tokens_per_second"]
    bf16_gain = row(bf16, "course default")["tokens_per_second"] / row(bf16, "course, but pad")["tokens_per_second"]
    assert f"ran {tokens['course']} tokens/s against {tokens['padded']} with the pad positions computed " \
           f"({gain:.2f}x), with the EPYC's bf16 units {bf16_gain:.2f}x" in text
    assert f"QLoRA ran {row(here, 'QLoRA r=8, adapter in bf16')['tokens_per_second']:.0f} tokens/s with the bf16 " \
           f"adapter and {min(qlora):.0f}-{max(qlora):.0f} with the fp32 one, against LoRA's {tokens['lora']}" in text
    glibc = whole_course("cpu-avx2-emulated", "glibc")  # the table's run before tcmalloc, the same lesson code
    totals = {kind: course_times.total_seconds(rows.values())
              for kind, (_, rows) in course_times.measured(RESULTS).items()}
    assert f"17.5 with the oneDNN products above (`git show a15b066:benchmarks/results/course-times-cpu-avx2-emulated.md`), " \
           f"18.1 with the LoRA path (`git show 7328ed5:benchmarks/results/course-times-cpu-avx2-emulated.md`), " \
           f"{sum(r['seconds'] for r in glibc.values()) / 60:.1f} with the same lesson code on another evening " \
           f"(`git show 0cc132f:benchmarks/results/course-times-cpu-avx2-emulated.md`; " in text
    assert f"and {totals['cpu-avx2-emulated'] / 60:.1f} minutes in the course-times table, on tcmalloc" in text
    assert "tcmalloc" in (RESULTS / "course-times-cpu-avx2-emulated.md").read_text()
    lesson02, lesson05 = (glibc[name]["seconds"] for name in ("02_supervised_fine_tuning", "05_evaluation"))
    assert f"lesson 02 289 -> {lesson02:.0f} s, lesson 05 210 -> {lesson05:.0f} s: runs of unchanged code" in text


def test_the_decoding_speed_ups_the_readme_quotes_are_the_benchmarks():
    text = re.sub(r"\s+", " ", README)
    for kind in ("cpu-avx2-emulated", "cpu-avx512-bf16"):
        data = json.loads((RESULTS / f"decoding-{kind}.json").read_text())
        assert all(row["same_tokens"] for row in data["rows"]), f"decoding-{kind}.json: a fast reply differs"
        speed_up = {(row["model"], row["batch"]): row["stock_s"] / row["fast_s"] for row in data["rows"]}
        figures = ", ".join(f"{name} " + " / ".join(f"{speed_up[source, batch]:.2f}x" for batch in (1, 7, 16))
                            for name, source in (("SmolLM2", "offline"), ("Gemma 3", "offline-base")))
        assert f"decoding-{kind}.md`: {figures}" in text, figures


def test_the_lora_layers_speed_up_the_readme_quotes_is_the_benchmarks():
    text = re.sub(r"\s+", " ", README)
    figures = {}
    for kind in ("cpu-avx2-emulated", "cpu-avx512-bf16"):
        rows = json.loads((RESULTS / f"decoding-{kind}.json").read_text())["rows"]
        speed_up = {row["batch"]: row["peft_lora_forward_s"] / row["fast_s"] for row in rows
                    if row["model"] == "offline + LoRA adapter"}
        figures[kind] = " / ".join(f"{speed_up[batch]:.2f}x" for batch in (1, 7, 16))
    assert (f"fast with PEFT's forward against fast, batch 1 / 7 / 16: {figures['cpu-avx2-emulated']} with torch "
            f"limited to AVX2, {figures['cpu-avx512-bf16']} with AVX-512") in text, figures


def test_the_fresh_memory_paragraph_quotes_its_results_files():
    text = re.sub(r"\s+", " ", README[README.index("**Fresh memory, in a virtual machine.**"):].split("\n\n")[0])
    best = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[-1].rstrip(" |")
            for line in (RESULTS / "fresh-memory-cpu-avx512-bf16.md").read_text().splitlines() if line.startswith("| ")}
    assert (f"memory touched for the first time {best['first touch of new memory']} GB/s, memory already mapped "
            f"{best['memory already mapped (zero_ again)']} GB/s, freed and taken again at once "
            f"{best['freed and taken again at once']} GB/s, after 4 s {best['freed and taken again after 4 s']} GB/s") in text
    glibc = whole_course("cpu-avx512-bf16", "glibc")
    share = sum(r["of it in the OS kernel"] for r in glibc.values()) / sum(r["CPU s"] for r in glibc.values())
    lesson = glibc["02_supervised_fine_tuning"]
    assert f"course-times run on glibc's malloc, {share:.0%} of the notebooks' CPU time was spent in the operating system's kernel" in text
    assert f"(lesson 02, whose base model" in text and \
        f"every step: {lesson['of it in the OS kernel'] / lesson['CPU s']:.0%})" in text
    kept = (RESULTS / "allocator-cpu-avx512-bf16.md").read_text()
    assert "| the Makefile's tunables | 231 | 320 | 68 | 9.4 |" in kept and "| + `glibc.malloc.mmap_max=0` | 215 | 324 | 42 | 16.9 |" in kept
    assert "cut lesson 02 from 231 to 215 s on the EPYC but raised its peak from 9.4 to 16.9 GB" in text
    assert "mmap_max" not in (ROOT / "Makefile").read_text()


def whole_course(kind, malloc):
    """allocator-<kind>.md's whole-course table: notebook -> {"seconds", "CPU s", ...} under that malloc."""
    lines = [line for line in (RESULTS / f"allocator-{kind}.md").read_text().split("### The whole course")[1].splitlines()
             if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    start = next(i for i, cell in enumerate(header) if cell.startswith(f"{malloc}:"))
    names = ["seconds", "CPU s", "of it in the OS kernel", "peak memory (GB)"]
    rows = {}
    for line in lines[1:]:  # the header's separator row starts "|-"
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] != "all":
            rows[cells[0]] = {name: float(value) for name, value in zip(names, cells[start:start + 4])}
    return rows


def test_the_tcmalloc_paragraph_quotes_the_allocator_results():
    text = re.sub(r"\s+", " ", README[README.index("**A malloc that keeps freed memory.**"):].split("\n\n")[0])
    results = (RESULTS / "allocator-cpu-avx512-bf16.md").read_text()
    table = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in results.splitlines() if line.startswith("| ")]
    lesson02 = {}
    for cells in table:
        lesson02.setdefault(cells[0], []).append(cells)
    glibc_runs = lesson02["glibc, the Makefile's tunables"]
    glibc, glibc_peak = [int(r[1]) for r in glibc_runs], float(glibc_runs[0][4])
    (tcmalloc,) = lesson02["tcmalloc, `TCMALLOC_RELEASE_RATE=0`"]
    kept = lesson02["jemalloc, freed memory kept"]
    more = [float(r[4]) - glibc_peak for r in kept]
    assert f"{min(glibc)}-{max(glibc)} s on glibc, {tcmalloc[1]} on tcmalloc with " \
           f"{float(tcmalloc[4]) - glibc_peak:.1f} GB more at the peak" in text
    assert f"never hands memory back ({kept[0][1]} s, {min(more):.1f}-{max(more):.1f} GB more)" in text
    users = [int(r[2]) for r in glibc_runs]
    assert f"user CPU time was {min(users)}-{max(users)} s on glibc and {tcmalloc[2]} on tcmalloc" in text
    shares = [sum(r["of it in the OS kernel"] for r in rows.values()) / sum(r["CPU s"] for r in rows.values())
              for rows in (whole_course("cpu-avx512-bf16", malloc) for malloc in ("glibc", "tcmalloc"))]
    assert f"(the kernel's share of the CPU time {shares[0]:.0%} -> {shares[1]:.0%};" in text
    for kind, words in (("cpu-avx512-bf16", "with the EPYC's bf16 units"), ("cpu-avx2-emulated", "with torch limited to AVX2")):
        minutes = [sum(r["seconds"] for r in whole_course(kind, malloc).values()) / 60 for malloc in ("glibc", "tcmalloc")]
        assert f"{minutes[0]:.1f} -> {minutes[1]:.1f} minutes {words}" in text
    again = re.search(r"A glibc run after the tcmalloc one.*?\*\*([\d.]+) min\*\*", results, re.S)
    assert f"a second glibc run after the tcmalloc one took {again.group(1)}," in text
    later = re.search(r"lesson 02 [\d.]+ s, 03 ([\d.]+),\s+04 ([\d.]+), 05 ([\d.]+)\.", results)
    on_tcmalloc = whole_course("cpu-avx512-bf16", "tcmalloc")
    for lesson, seconds in zip(("03_lora_and_qlora", "04_adapters_and_merging", "05_evaluation"), later.groups()):
        assert abs(float(seconds) / on_tcmalloc[lesson]["seconds"] - 1) < 0.1  # "about as long as on tcmalloc"
    assert "lessons 03-05 about as long as on tcmalloc, so most of the gain is lesson 02's" in text
    once_more = re.search(r"And tcmalloc once more after that.*?\*\*([\d.]+) min\*\*", results, re.S)
    assert f"a second tcmalloc run after that {once_more.group(1)})" in text
    (_, ours), = [course_times.measured(RESULTS)["cpu-avx512-bf16"]]
    assert sum(float(r["seconds"]) for r in ours.values()) == pytest.approx(
        sum(r["seconds"] for r in whole_course("cpu-avx512-bf16", "tcmalloc").values()))  # the table's own run
    assert "tcmalloc" in (RESULTS / "course-times-cpu-avx512-bf16.md").read_text()
