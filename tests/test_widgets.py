"""The template explorer, driven through its real ipywidgets controls (no browser needed)."""
import pytest

from helpers.widgets import CUSTOM, TemplateExplorer


@pytest.fixture
def explorer(offline_model):
    explorer = TemplateExplorer(offline_model[1])
    explorer.view()
    return explorer


def rows(explorer):
    return explorer._view.rows.children


def test_changing_a_role_re_renders_the_conversation(explorer):
    before = explorer._view.output.value
    rows(explorer)[3].children[0].value = "assistant"   # the last user turn becomes an assistant turn
    assert explorer.messages[3]["role"] == "assistant"
    assert explorer._view.output.value != before
    assert explorer.state()["trained"] > 3


def test_assistant_only_toggle_changes_the_trained_token_count(explorer):
    assert explorer.state()["trained"] == 3                # "Paris." plus <|im_end|>
    explorer._view.assistant_only.value = False
    assert explorer.state()["trained"] == explorer.state()["tokens"]


def test_generation_prompt_toggle(explorer):
    assert explorer.state()["text"].endswith("<|im_start|>assistant\n")
    explorer._view.generation.value = False
    assert explorer.state()["text"].endswith("And of Italy?<|im_end|>\n")


def test_editing_text_and_adding_and_removing_messages(explorer):
    rows(explorer)[1].children[1].value = "What is the capital of Spain?"
    assert "Spain" in explorer._view.output.value
    explorer._view.add.click()
    assert len(explorer.messages) == 5 and explorer.messages[-1]["role"] == "assistant"
    rows(explorer)[0].children[2].click()                  # remove the system message
    assert len(rows(explorer)) == 4 and explorer.messages[0]["role"] == "user"


def test_a_template_that_refuses_shows_its_error_inside_the_widget(explorer):
    explorer._view.template.value = "gemma"
    assert "System role not supported" in explorer._view.output.value
    explorer._view.template.value = "llama3"
    assert "<|start_header_id|>" in explorer.state()["text"]


def test_a_broken_pasted_template_does_not_break_the_widget(explorer):
    explorer._view.template.value = CUSTOM
    explorer._view.custom.value = "{% for m in messages %}{{ m.content }"
    assert "refuses" in explorer._view.output.value
    explorer._view.custom.value = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    assert "[user] What is the capital of France?" in explorer.state()["text"]


def test_a_malformed_message_list_is_flagged_not_fatal(explorer):
    explorer.set_message(1, content="")
    assert "empty" in explorer.state()["warning"]
    assert "Note:" in explorer.as_text()


def test_plain_text_fallback_for_papermill_and_terminals(explorer, capsys):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "⟦Paris.<|im_end|>⟧" in bundle["text/plain"]
    explorer.show()                                        # no IPython shell here: prints instead
    assert "⟦Paris.<|im_end|>⟧" in capsys.readouterr().out


def test_unknown_template_is_refused_with_the_choices(explorer):
    with pytest.raises(ValueError, match="chatml.*custom"):
        explorer.set_template("vicuna")
