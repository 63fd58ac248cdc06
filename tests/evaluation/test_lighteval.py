"""LightEval 0.13 offline: the shim, the local tasks, and a real (small) run on the offline model."""

import pytest

import helpers
from helpers.evaluation import lighteval_runs, lighteval_tasks, scoring

pytestmark = pytest.mark.slow  # every test here loads the real model or runs notebooks


def test_local_datasets_load_the_way_lighteval_loads_them():
    from datasets import load_dataset

    root = lighteval_tasks.local_data()
    anatomy = load_dataset(str(root / "mmlu"), "anatomy")
    assert anatomy["test"].num_rows == 135 and anatomy["dev"].num_rows == 5
    held_out = load_dataset(str(root / "course_held_out"), "default")["test"]
    assert held_out.num_rows > 48 and held_out[0]["references"]


@pytest.fixture(scope="module")
def mmlu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lighteval")
    pipeline = lighteval_runs.run_lighteval("course_mmlu_letter:anatomy|0", helpers.model_path("offline"), out,
                                            max_samples=6, batch_size=6)
    return pipeline, out


@pytest.fixture(scope="module")
def held_out_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lighteval-held-out")
    return lighteval_runs.run_lighteval("course_held_out|0", helpers.model_path("offline"), out, max_samples=16)


def test_lighteval_and_the_lessons_ask_the_same_questions_the_same_way_and_get_the_same_replies(held_out_run,
                                                                                                 offline_model):
    """Lesson 02's exact match and lesson 05's LightEval score of one model must be one measurement."""
    from helpers import evaluation

    questions = evaluation.held_out_questions(helpers.load_chat_dataset("offline")["test"], 16)
    lesson = evaluation.score_held_out(*offline_model, questions)
    asked = [evaluation.chat_prompt(evaluation.prompt_of(q["messages"]), offline_model[1]) for q in questions]
    details = held_out_run.get_details()["course_held_out|0"]
    by_lighteval = {detail.doc.query: detail.model_response.text[0] for detail in details}
    assert list(by_lighteval) == asked  # the same questions, in the same order, in the same words
    assert [by_lighteval[prompt].strip() for prompt in asked] == lesson.reply.tolist()
    table = lighteval_runs.results_table(held_out_run.get_results())
    assert table.value.iloc[0] == pytest.approx(lesson.correct.mean())


def test_a_run_that_mixes_pre_rendered_and_chat_formatted_tasks_is_refused():
    assert lighteval_runs.uses_chat_template("course_held_out|0") is False
    assert lighteval_runs.uses_chat_template("course_mmlu_letter:anatomy|0") is None
    with pytest.raises(ValueError, match="must run on its own"):
        lighteval_runs.uses_chat_template("course_mmlu_letter:anatomy|0,course_held_out|0")


def test_a_real_run_reports_accuracy_with_its_standard_error(mmlu_run):
    import torch

    pipeline, out = mmlu_run
    assert torch.is_grad_enabled(), "LightEval's global set_grad_enabled(False) must be undone"
    table = lighteval_runs.results_table(pipeline.get_results())
    accuracy = table[table.task.str.startswith("course_mmlu_letter:anatomy")].iloc[0]
    assert 0 <= accuracy.value <= 1 and accuracy.stderr > 0
    details = lighteval_runs.details_table(pipeline, next(t for t in pipeline.get_details() if "anatomy" in t))
    assert len(details) == 6 and details.prediction.isin([" A", " B", " C", " D"]).all()
    assert scoring.standard_error(details["acc"]) == pytest.approx(accuracy.stderr)
    assert list(out.rglob("results_*.json")), "results are saved under the output folder"


def test_the_held_out_task_scores_like_the_lessons(held_out_run):
    from helpers import evaluation

    details = lighteval_runs.details_table(held_out_run, "course_held_out|0")
    for row in details.itertuples():
        assert row.em == float(evaluation.exact_match(row.prediction, row.gold))


def test_a_model_in_memory_scores_like_the_same_model_from_its_folder(mmlu_run, tmp_path):
    pipeline, _ = mmlu_run
    model, _ = helpers.load_model("offline")
    in_memory = lighteval_runs.run_lighteval("course_mmlu_letter:anatomy|0", model, tmp_path, max_samples=6, batch_size=6)
    task = next(t for t in pipeline.get_details() if "anatomy" in t)
    from_memory = lighteval_runs.details_table(in_memory, next(t for t in in_memory.get_details() if "anatomy" in t))
    assert from_memory.prediction.tolist() == lighteval_runs.details_table(pipeline, task).prediction.tolist()


def test_the_saved_results_file_gives_the_runs_own_scores(mmlu_run, tmp_path):
    pipeline, out = mmlu_run
    saved = lighteval_runs.results_table(lighteval_runs.saved_results(out))
    in_memory = lighteval_runs.results_table(pipeline.get_results())
    in_memory["task"] = in_memory.task.str.replace(r":(\d+)$", r"|\1", regex=True)  # the file writes "task|0"
    key = ["task", "metric"]
    assert saved.sort_values(key).reset_index(drop=True).equals(in_memory.sort_values(key).reset_index(drop=True))
    with pytest.raises(FileNotFoundError, match="no LightEval results"):
        lighteval_runs.saved_results(tmp_path)


def test_held_out_replies_are_the_runs_own_for_the_rows_it_scored(held_out_run):
    from helpers import evaluation

    pipeline = held_out_run
    rows = evaluation.held_out_rows(helpers.load_chat_dataset("offline")["test"])
    replies = lighteval_runs.held_out_replies(pipeline, rows)
    details = lighteval_runs.details_table(pipeline, "course_held_out|0")
    assert len(replies) == 16 and replies.index.is_monotonic_increasing  # LightEval's sample, in the rows' order
    assert sorted(replies.reply) == sorted(details.prediction)
    assert replies.correct.sum() == details.em.sum()
    assert replies.correct.tolist() == [evaluation.exact_match(r, rows[i]["references"])
                                        for i, r in replies.reply.items()]
    with pytest.raises(ValueError, match="pass every held-out row"):
        lighteval_runs.held_out_replies(pipeline, rows[:2])


def test_details_table_names_the_tasks_it_has(mmlu_run):
    with pytest.raises(ValueError, match="tasks in this run"):
        lighteval_runs.details_table(mmlu_run[0], "mmlu:nothing")


def test_the_shim_skips_the_modules_that_break_offline():
    from lighteval.tasks.registry import Registry

    from helpers.evaluation import lighteval_compat

    lighteval_compat.install_patches()
    configs = Registry.load_all_task_configs(custom_tasks=str(lighteval_runs.TASKS_FILE))
    assert "course_mmlu_letter:anatomy" in configs and "course_held_out" in configs
    assert "mmlu:anatomy" in configs  # the built-in tasks still load
    assert "bigbench_hard:logical_deduction_three_objects" in configs  # the BBH task lesson 05 names
    assert not any(name.startswith(("tiny", "mt_bench", "mixeval")) for name in configs)


def test_a_trainers_mixed_precision_does_not_reach_a_later_evaluation(fresh_accelerator_state):
    """accelerate shares one state per process: after a bf16 Trainer, LightEval's Accelerator() was bf16 too."""
    from accelerate import Accelerator

    from helpers.evaluation import lighteval_compat

    Accelerator(mixed_precision="bf16", cpu=True)  # what a Trainer with bf16=True leaves behind
    assert Accelerator(cpu=True).mixed_precision == "bf16"  # the trap, as accelerate has it
    with lighteval_compat.session():
        assert Accelerator(cpu=True).mixed_precision == "no"
    # and LightEval's state stays inside: a Trainer afterwards may take its own precision (accelerate raises otherwise)
    assert Accelerator(mixed_precision="bf16", cpu=True).mixed_precision == "bf16"


def test_a_session_puts_autograd_back_however_lighteval_left_it():
    import torch

    from helpers.evaluation import lighteval_compat

    import lighteval.models.transformers.transformers_model  # noqa: F401  (turns autograd off on import)

    with lighteval_compat.session():
        torch.set_grad_enabled(False)  # as LightEval's model wrapper does
    assert torch.is_grad_enabled()


def test_another_lighteval_release_warns_and_skips_a_patch_whose_target_is_gone(monkeypatch):
    import importlib.metadata

    from helpers.evaluation import lighteval_compat

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    monkeypatch.setattr(lighteval_compat, "installed", set(lighteval_compat.PATCHES))  # the real ones: in place
    monkeypatch.setitem(lighteval_compat.PATCHES, "gone", ("lighteval.tasks.registry:Registry._no_such_loader",
                                                           lambda: pytest.fail("a patch with no target ran")))
    monkeypatch.delattr(lighteval_compat.install_patches, "warned", raising=False)
    with pytest.warns(UserWarning, match=r"patch 'gone' skipped.*pip install lighteval==0\.13\.0"):
        installed = lighteval_compat.install_patches()
    assert "gone" not in installed


def test_scoring_choices_on_a_shared_prompt_gives_lightevals_own_answers(monkeypatch):
    """The shim's speed-up: one pass over the prompt, then the choices on its cache, instead of one
    full pass per choice, with cpu_decoding's products; the same log-probabilities (to float rounding) and the same greedy flags,
    on letter choices (one token each), cloze choices and TruthfulQA's (several tokens, 4-13 of them)."""
    import torch
    from lighteval.models.transformers.transformers_model import TransformersModel
    from lighteval.tasks.registry import Registry

    from helpers.evaluation import lighteval_compat

    lighteval_compat.install_patches()
    model, _ = helpers.load_model("offline")  # its own copy: LightEval's wrapper changes the model it wraps
    try:
        lighteval_model = TransformersModel.from_model(model, lighteval_runs.model_config(helpers.model_path("offline")))
        tasks = "course_mmlu_letter:anatomy|0,course_mmlu_cloze:anatomy|0,course_truthfulqa:mc1|0"
        loaded = Registry(tasks=tasks, custom_tasks=str(lighteval_runs.TASKS_FILE)).load_tasks()
        docs = [doc for task in loaded.values() for doc in task.eval_docs()[:4]]
        assert len(docs) == 12 and max(len(d.choices) for d in docs) > 4
        scored, score = [], lighteval_compat.score_choices
        fast_product = lambda m: "forward" in vars(m.lm_head)  # cpu_decoding.fast_decoding's, in place
        monkeypatch.setattr(lighteval_compat, "score_choices", lambda *args: scored.append(fast_product(args[0])) or score(*args))
        fast = lighteval_model._loglikelihood_tokens(docs)
        assert len(scored) == len(docs), "every question took the shared-prompt path"
        assert all(scored) and not fast_product(model), "the fast CPU products ran, and only inside the scoring"
        slow = lighteval_model._lighteval_loglikelihood_tokens(docs)
    finally:
        torch.set_grad_enabled(True)  # LightEval's wrapper turns autograd off for the whole process
    for f, s in zip(fast, slow):
        assert f.logprobs == pytest.approx(s.logprobs, abs=2e-3)
        assert f.argmax_logits_eq_gold == s.argmax_logits_eq_gold
        assert max(range(len(f.logprobs)), key=f.logprobs.__getitem__) == max(range(len(s.logprobs)), key=s.logprobs.__getitem__)
        assert f.input_tokens.tolist() == s.input_tokens.tolist() and f.output_tokens.tolist() == s.output_tokens.tolist()


def test_the_lighteval_magic_stops_the_notebook_with_lighteval_s_own_message():
    from helpers.evaluation import lighteval_compat

    with pytest.raises(RuntimeError, match="lighteval exited with status"):
        lighteval_compat.lighteval_magic('accelerate "model_name=/nonexistent,device=cpu,batch_size=1" "no_such_task|0"')
