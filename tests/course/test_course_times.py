"""The course's time and memory text comes from `benchmarks/course_times.py`'s results files only."""
import json

from helpers.course import course_times


def results(folder, kind, rows, cache=course_times.AFTER_SETUP):
    machine = {"kind": kind, "cpu": "Test CPU", "flags": {"cpu-amx": "avx512_bf16 amx_bf16", "cpu-avx512-bf16": "avx512_bf16"}.get(kind, "avx2"),
               "date": "2026-12-04", "commit": "abc1234", "cache": cache}
    course_times.write_results(folder, machine, [
        {"notebook": name, "status": "ok", "seconds": seconds, "peak_memory_gb": memory, "headline": ""}
        for name, seconds, memory in rows])


def test_a_header_quotes_every_kind_of_machine_that_ran_the_notebook(tmp_path):
    results(tmp_path, "cpu-avx512-bf16", [("02_supervised_fine_tuning", 126.4, 3.61), ("01_chat_templates_exercises", 7.2, 0.9)])
    results(tmp_path, "cpu-avx2-emulated", [("02_supervised_fine_tuning", 153.2, 6.68)])
    text = course_times.header_paragraph("02_supervised_fine_tuning", tmp_path)
    assert text.startswith("**Time and memory** to run every cell") and "right after setup" in text
    assert "2.1 min and 3.6 GB at the peak on a CPU with bf16 units (Test CPU with AVX512-BF16, 2026-12-04)" in text
    assert "2.6 min and 6.7 GB at the peak on a CPU without bf16 units (Test CPU limited to AVX2, 2026-12-04)" in text
    only_one = course_times.header_paragraph("01_chat_templates_exercises", tmp_path)
    assert "to run every cell of the solved notebook" in only_one
    assert "7 s and 0.9 GB" in only_one and "AVX2" not in only_one
    assert "not measured yet" in course_times.header_paragraph("99_new", tmp_path)


def test_the_stand_in_states_how_much_faster_it_trains_than_a_real_avx2_cpu(tmp_path):
    results(tmp_path, "cpu-avx2-emulated", [("00_setup", 600, 1.0)])
    for kind, speed in (("cpu-avx2", 100.0), ("cpu-avx2-emulated", 140.0)):
        row = {"name": "plain TRL (chapter defaults: fp32, padded, TRL's loss)", "tokens_per_second": speed}
        (tmp_path / f"training-speed-{kind}.json").write_text(json.dumps({"training": [row]}))
    assert course_times.stand_in_speed(tmp_path) == 1.4
    assert "a real 2-core AVX2 CPU trains 1.4x slower" in course_times.header_paragraph("00_setup", tmp_path)
    assert "about 14 minutes on a real 2-core AVX2 CPU: an estimate from runs on different days" \
        in course_times.readme_table(tmp_path)


def test_the_readme_table_has_a_column_per_kind_and_a_total(tmp_path):
    results(tmp_path, "cpu-amx", [("00_setup", 30, 0.9), ("05_evaluation", 270, 2.0)])
    results(tmp_path, "cpu-avx2-emulated", [("00_setup", 60, 1.0)], cache="warm")
    table = course_times.readme_table(tmp_path).splitlines()
    assert table[0] == ("| notebook | with bf16 units (AMX): time, peak memory | "
                        "without bf16 units (AVX-512 limited to AVX2): time, peak memory |")
    assert any(line.startswith("- with bf16 units (AMX): Test CPU with AMX, 2026-12-04;") for line in table)
    assert "| `00_setup` | 30 s, 0.9 GB | 60 s, 1.0 GB |" in table
    assert "| `05_evaluation` | 4.5 min, 2.0 GB |  |" in table
    assert "| all | **5.0 min** | **1.0 min** |" in table
    assert any("model cache warm" in line for line in table)


def test_the_readme_says_how_long_setup_took_to_convert_the_models(tmp_path):
    results(tmp_path, "cpu-amx", [("00_setup", 30, 0.9)])
    machine_file = tmp_path / "course-times-cpu-amx.json"
    machine_file.write_text(json.dumps({**json.loads(machine_file.read_text()), "setup_conversion_seconds": 61.2}))
    assert "the conversion took 61 s in setup." in course_times.readme_table(tmp_path)


def test_every_cpu_kind_the_hardware_module_names_has_a_label():
    import inspect

    from helpers import hardware
    named = {kind for kind in ("cpu-amx", "cpu-avx512-bf16", "cpu-avx512", "cpu-avx2", "cpu-other", "cpu-avx2-emulated")
             if f'"{kind}"' in inspect.getsource(hardware.machine_kind)}
    assert named == set(course_times.KINDS)


def test_the_readme_and_every_notebook_header_quote_the_results_files():
    stale = course_times.sync()
    assert not stale, (f"{[str(p) for p in stale]} state other times than benchmarks/results/course-times-*.csv: "
                       "run .venv/bin/python benchmarks/course_times.py --write-docs")


def test_the_results_keep_each_notebooks_cpu_time_and_the_kernels_share(tmp_path):
    machine = {"kind": "cpu-avx2", "cpu": "Test CPU", "date": "2026-12-08"}
    rows = [{"notebook": "00_setup", "status": "ok", "seconds": 10, "peak_memory_gb": 1.0, "headline": "",
             "cpu_seconds": 15.0, "system_cpu_seconds": 1.0},
            {"notebook": "02_supervised_fine_tuning", "status": "ok", "seconds": 200, "peak_memory_gb": 9.0,
             "headline": "", "cpu_seconds": 385.0, "system_cpu_seconds": 67.0}]
    csv_path, md_path = course_times.write_results(tmp_path, machine, rows)
    kept = course_times.read_summary(csv_path)
    assert [(r["cpu_seconds"], r["system_cpu_seconds"]) for r in kept] == [("15.0", "1.0"), ("385.0", "67.0")]
    assert course_times.system_share(kept) == 68 / 400
    assert "kernel: 17% of all the notebooks' CPU time" in md_path.read_text()
    assert "| 02_supervised_fine_tuning | ok | 200 | 9.0 | 385.0 | 67.0 |" in md_path.read_text()
    older = [{k: v for k, v in row.items() if "cpu" not in k} for row in rows]  # a file from before the count
    assert course_times.system_share(older) is None
    assert "of all the notebooks' CPU time" not in course_times.write_results(tmp_path, machine, older)[1].read_text()
