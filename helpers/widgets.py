"""The template explorer: edit a conversation, pick a template, and see the text and trained tokens.

`TemplateExplorer` keeps its logic (messages, template choice, toggles -> rendering) apart from
its ipywidgets view, so the logic is tested without a browser and the same object prints a plain
rendering where widgets cannot be shown (papermill, CI, a terminal).
"""
from .data import conversation_problem
from .templates import FAMILIES, TemplateRenderError, mask_html, mask_text, render, token_mask

ROLES = ("system", "user", "assistant")
CUSTOM = "custom"
EXAMPLE = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]


class TemplateExplorer:
    def __init__(self, tokenizer, messages=None, template: str = "chatml",
                 add_generation_prompt: bool = True, assistant_only: bool = True):
        self.tokenizer = tokenizer
        self.messages = [dict(m) for m in (messages or EXAMPLE)]
        self.template = template                  # a key of FAMILIES, or CUSTOM
        self.custom_template = FAMILIES["chatml"].template
        self.add_generation_prompt = add_generation_prompt
        self.assistant_only = assistant_only
        self._view = None

    # --- the logic -------------------------------------------------------------------------
    def add_message(self, role: str = "user", content: str = "") -> None:
        self.messages.append({"role": role, "content": content})
        self._changed(rebuild=True)

    def remove_message(self, index: int) -> None:
        del self.messages[index]
        self._changed(rebuild=True)

    def set_message(self, index: int, role: str | None = None, content: str | None = None) -> None:
        if role is not None:
            self.messages[index]["role"] = role
        if content is not None:
            self.messages[index]["content"] = content
        self._changed()

    def set_template(self, template: str, custom_text: str | None = None) -> None:
        if template != CUSTOM and template not in FAMILIES:
            raise ValueError(f"Unknown template {template!r}. Choose one of {', '.join(FAMILIES)} or {CUSTOM!r}")
        self.template = template
        if custom_text is not None:
            self.custom_template = custom_text
        self._changed()

    def set_options(self, add_generation_prompt: bool | None = None, assistant_only: bool | None = None) -> None:
        if add_generation_prompt is not None:
            self.add_generation_prompt = add_generation_prompt
        if assistant_only is not None:
            self.assistant_only = assistant_only
        self._changed()

    def state(self) -> dict:
        """The rendering of the current messages: text, [(token, trained)] pieces, or the error."""
        source = self.custom_template if self.template == CUSTOM else self.template
        end_of_turn = FAMILIES[self.template].end_of_turn if self.template in FAMILIES else ""
        try:
            text = render(self.messages, source, add_generation_prompt=self.add_generation_prompt)
        except (TemplateRenderError, TypeError, ValueError) as e:
            return {"error": str(e), "text": "", "pieces": [], "tokens": 0, "trained": 0, "warning": None}
        pieces = token_mask(self.tokenizer, text, self.messages, self.assistant_only, end_of_turn)
        return {"error": None, "text": text, "pieces": pieces, "tokens": len(pieces),
                "trained": sum(t for _, t in pieces),
                "warning": conversation_problem(self.messages, require_assistant_last=False)}

    def as_text(self) -> str:
        state = self.state()
        name = FAMILIES[self.template].name if self.template in FAMILIES else "custom template"
        if state["error"]:
            return f"Template explorer ({name}): {state['error']}"
        warning = f"Note: {state['warning']}\n" if state["warning"] else ""
        return f"Template explorer ({name}), {state['tokens']} tokens:\n{warning}{mask_text(state['pieces'])}"

    def as_html(self) -> str:
        import html

        state = self.state()
        if state["error"]:
            return f"<pre>⚠ {html.escape(state['error'])}</pre>"
        warning = f"<div>Note: {html.escape(state['warning'])}</div>" if state["warning"] else ""
        return warning + mask_html(state["pieces"])

    # --- the view --------------------------------------------------------------------------
    def show(self):
        """Display the widget in Jupyter or Colab; print the plain rendering anywhere else."""
        try:
            from IPython import get_ipython
            from IPython.display import display
            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is None:
            print(self.as_text())
            return None
        display(self)
        return None

    def _repr_mimebundle_(self, include=None, exclude=None):
        # Frontends with widget support draw the widget; papermill, nbconvert and other
        # frontends without it fall back to the text/plain rendering below.
        bundle = self.view()._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle["text/plain"] = self.as_text()
        return bundle

    def view(self):
        if self._view is None:
            self._view = _ExplorerView(self)
        return self._view.box

    def _changed(self, rebuild: bool = False) -> None:
        if self._view is not None:
            self._view.refresh(rebuild)


class _ExplorerView:
    """The ipywidgets controls; every change goes through the explorer's logic methods."""

    def __init__(self, explorer: TemplateExplorer):
        import ipywidgets as w

        self.w, self.explorer = w, explorer
        options = [(f.name, key) for key, f in FAMILIES.items()] + [("Paste your own...", CUSTOM)]
        self.template = w.Dropdown(options=options, value=explorer.template, description="Template")
        self.custom = w.Textarea(value=explorer.custom_template, layout=w.Layout(width="100%", height="120px"))
        self.generation = w.Checkbox(value=explorer.add_generation_prompt, description="add_generation_prompt")
        self.assistant_only = w.Checkbox(value=explorer.assistant_only, description="assistant-only loss")
        self.add = w.Button(description="Add message", icon="plus")
        self.rows = w.VBox()
        self.output = w.HTML()
        self.template.observe(lambda c: explorer.set_template(c["new"]), "value")
        self.custom.observe(lambda c: explorer.set_template(CUSTOM, c["new"]), "value")
        self.generation.observe(lambda c: explorer.set_options(add_generation_prompt=c["new"]), "value")
        self.assistant_only.observe(lambda c: explorer.set_options(assistant_only=c["new"]), "value")
        self.add.on_click(lambda _: explorer.add_message("user" if self._last_role() != "user" else "assistant"))
        self.box = w.VBox([w.HBox([self.template, self.generation, self.assistant_only]), self.custom,
                           self.rows, self.add, self.output])
        self.refresh(rebuild=True)

    def _last_role(self):
        return self.explorer.messages[-1]["role"] if self.explorer.messages else None

    def _row(self, index: int, message: dict):
        w = self.w
        role = w.Dropdown(options=ROLES, value=message["role"] if message["role"] in ROLES else "user",
                          layout=w.Layout(width="110px"))
        content = w.Textarea(value=message["content"] or "", layout=w.Layout(width="60%", height="48px"))
        remove = w.Button(icon="trash", tooltip="remove this message", layout=w.Layout(width="40px"))
        role.observe(lambda c: self.explorer.set_message(index, role=c["new"]), "value")
        content.observe(lambda c: self.explorer.set_message(index, content=c["new"]), "value")
        remove.on_click(lambda _: self.explorer.remove_message(index))
        return w.HBox([role, content, remove])

    def refresh(self, rebuild: bool = False) -> None:
        if rebuild:
            self.rows.children = [self._row(i, m) for i, m in enumerate(self.explorer.messages)]
        self.custom.layout.display = None if self.explorer.template == CUSTOM else "none"
        self.output.value = self.explorer.as_html()
