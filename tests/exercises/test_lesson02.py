"""Lesson 02 (supervised fine-tuning) exercise checks: right answers pass, wrong ones get hints that name the fix."""

import pytest

from helpers.exercises import lesson02
from helpers.exercises.checks import FAILED, PASSED


def test_lesson02_formatting_func_hint_names_the_empty_input_row(capsys):

    def always_input(example):
        return (f"### Instruction:\n{example['instruction']}\n\n### Input:\n{example['input']}\n\n"
                f"### Response:\n{example['output']}")

    assert lesson02.check_formatting_func(always_input) == FAILED
    assert "its input is empty" in capsys.readouterr().out


def test_lesson02_max_length_hints_point_both_ways(offline_model, capsys):

    tokenizer = offline_model[1]
    assert lesson02.check_max_length(64, tokenizer) == FAILED
    assert "truncates" in capsys.readouterr().out
    assert lesson02.check_max_length(4096, tokenizer) == FAILED
    assert "more than twice" in capsys.readouterr().out
    assert lesson02.check_max_length(256, tokenizer) == PASSED


def test_lesson02_diagnoses_hints(capsys):

    assert lesson02.check_diagnoses({"A": "overfitting", "B": "converged", "C": "converged"}) == FAILED
    assert "run B is not converged" in capsys.readouterr().out
    assert lesson02.check_diagnoses({"A": "bad", "B": "x", "C": "y"}) == FAILED
    assert "is not one of" in capsys.readouterr().out


def test_lesson02_assistant_only_check_reads_the_real_labels(offline_model, tmp_path, capsys):
    from trl import SFTConfig, SFTTrainer

    import helpers
    from helpers import templates

    model, tokenizer = offline_model
    model = __import__("copy").deepcopy(model)  # a trainer sets checkpointing on its model: keep the shared one clean
    eight = helpers.load_chat_dataset()["train"].select(range(8))
    all_tokens = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=eight,
                            args=SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True))
    assert lesson02.check_assistant_only(all_tokens, 1.0) == FAILED
    assert "does not set assistant_only_loss=True" in capsys.readouterr().out
    template, tokenizer.chat_template = tokenizer.chat_template, templates.training_template()
    try:
        masked = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=eight,
                            args=SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True,
                                           assistant_only_loss=True))
        batch = next(iter(masked.get_train_dataloader()))
        share = float((batch["labels"][batch["attention_mask"].bool()] != -100).float().mean())
        assert 0 < share < 0.5
        assert lesson02.check_assistant_only(masked, 1.0) == FAILED
        assert lesson02.check_assistant_only(masked, share) == PASSED
    finally:
        tokenizer.chat_template = template


def reply_mask(input_ids, tokenizer, header_trained=False, end_trained=True):
    header = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    mask, in_reply, i = [], False, 0
    while i < len(input_ids):
        if input_ids[i:i + len(header)] == header:
            mask += [int(header_trained)] * len(header)
            i, in_reply = i + len(header), True
            continue
        mask.append(int(in_reply and (end_trained or input_ids[i] != end)))
        in_reply = in_reply and input_ids[i] != end
        i += 1
    return mask


@pytest.mark.parametrize("answer, hint", [
    (lambda ids, t: reply_mask(ids, t, header_trained=True), "should be masked"),
    (lambda ids, t: reply_mask(ids, t, end_trained=False), "('<|im_end|>', after"),
    (lambda ids, t: [1] * len(ids), "token 0 ('<|im_start|>'"),
    (lambda ids, t: reply_mask(ids, t)[:-1], "give one per token"),
    (lambda ids, t: t.apply_chat_template([{"role": "user", "content": "x"}], return_assistant_tokens_mask=True),
     "build the mask from the token ids yourself")])
def test_the_assistant_mask_built_by_hand_matches_trls_and_each_mistake_gets_its_hint(offline_model, capsys, answer, hint):
    tokenizer = offline_model[1]
    assert lesson02.check_assistant_mask(reply_mask, tokenizer) == PASSED
    capsys.readouterr()
    assert lesson02.check_assistant_mask(answer, tokenizer) == FAILED
    assert hint in capsys.readouterr().out
