"""Notebook metrics: recorded as a cell output, read back from the executed notebook by batch runs.

Storing metrics in the notebook itself (as papermill's scrapbook does) keeps every number next
to the cell that computed it, and needs no side files that could go stale.
"""
import json
import math

MIME = "application/vnd.fine-tuning-course.metrics+json"


def record_metrics(**values) -> None:
    """Show the metrics and store them in this cell's output for `python -m helpers run`.

    A value of None is a metric this machine could not measure (QLoRA without 4-bit support): it is
    shown as not measured and left out of the record, so no summary holds a stand-in number.
    """
    from IPython.display import display

    clean = {name: _jsonable(name, value) for name, value in values.items() if value is not None}
    skipped = [name for name, value in values.items() if value is None]
    text = "\n".join([f"{name}: {value}" for name, value in clean.items()]
                     + [f"{name}: not measured on this machine" for name in skipped])
    display({MIME: clean, "text/plain": "Recorded metrics:\n" + text}, raw=True)


def read_metrics(notebook_path) -> dict:
    """Every metric recorded in an executed notebook; a later value of the same name wins."""
    with open(notebook_path) as f:
        notebook = json.load(f)
    metrics = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            metrics.update(output.get("data", {}).get(MIME, {}))
    return metrics


def _jsonable(name, value):
    if hasattr(value, "item"):  # numpy and torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric {name!r} is {value}: record a finite number")
    if not isinstance(value, (int, float, str, bool)):
        raise TypeError(f"metric {name!r} must be a number, string or bool, got {type(value).__name__}")
    return round(value, 6) if isinstance(value, float) else value
