"""Lesson 01 (chat templates) exercise checks: right answers pass, wrong ones get hints that name the fix."""
import pytest

from helpers.exercises import lesson01
from helpers.exercises.checks import FAILED, PASSED


@pytest.mark.parametrize("answer, hint", [
    ([{"role": "user", "content": "Where is the treasure?"}], "ends with a user message"),
    ([{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Where is the treasure?"},
      {"role": "assistant", "content": "Under the palm tree."}], "differs at character"),
    ("<|im_start|>system...", "expected a list"),
])
def test_exercise_1_wrong_answers_get_specific_hints(answer, hint, capsys):
    assert lesson01.check_pirate_messages(answer) == FAILED
    assert hint in capsys.readouterr().out


def test_exercise_2_refuses_a_fix_that_deletes_text(capsys):
    deleted = [m if m["role"] != "human" else {**m, "role": "user"} for m in lesson01.BROKEN]
    del deleted[4]
    assert lesson01.check_fixed_conversation(deleted) == FAILED
    assert "lost some of the learner's text: ['Not red.']" in capsys.readouterr().out


def test_exercise_3_reports_the_failing_case(capsys):
    no_prompt = "{% for m in messages %}{{ '### ' + m['role'] | capitalize + ':\\n' + m['content'] + '\\n\\n' }}{% endfor %}"
    assert lesson01.check_header_template(no_prompt) == FAILED
    assert "case 3 (add_generation_prompt=True)" in capsys.readouterr().out
    assert lesson01.check_header_template("{% for m in messages %}{{ m.content }") == FAILED
    assert "case 1" in capsys.readouterr().out


def test_exercise_4_hints_at_the_closing_token(offline_model, capsys):
    tokenizer = offline_model[1]
    from helpers.templates import training_template

    expected = sum(tokenizer.apply_chat_template(lesson01.COUNTING, chat_template=training_template(), return_dict=True,
                                                 return_assistant_tokens_mask=True)["assistant_masks"])
    assert expected == 7  # "Chat." and "Chien." plus two <|im_end|>
    assert lesson01.check_trained_tokens(expected - 2, tokenizer) == FAILED
    assert "closing <|im_end|> is trained too" in capsys.readouterr().out
    assert lesson01.check_trained_tokens(expected, tokenizer) == PASSED


def test_exercise_2_keeps_what_the_user_wrote_in_user_turns(capsys):
    hidden = [{"role": "system", "content": "Answer briefly. Name a primary colour. Another one? Not red."},
              {"role": "user", "content": "Go on."}, {"role": "assistant", "content": "Red."},
              {"role": "user", "content": "And?"}, {"role": "assistant", "content": "Blue."}]
    assert lesson01.check_fixed_conversation(hidden) == FAILED  # valid, nothing lost, yet the turns are gone
    assert "what the user wrote must stay in user messages" in capsys.readouterr().out
