import math

import pytest

from helpers.records import _jsonable


def test_metrics_must_be_finite_plain_values():
    assert _jsonable("x", 0.1234567891) == 0.123457
    with pytest.raises(ValueError, match="finite"):
        _jsonable("loss", math.nan)
    with pytest.raises(TypeError, match="number, string or bool"):
        _jsonable("table", [1, 2])


def test_a_metric_this_machine_could_not_measure_is_left_out_not_stored(monkeypatch):
    import IPython.display

    from helpers.records import MIME, record_metrics
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw: shown.append(data))
    record_metrics(loss=1.5, four_bit_merge_top_token_agreement=None)
    (data,) = shown
    assert data[MIME] == {"loss": 1.5}
    assert "four_bit_merge_top_token_agreement: not measured on this machine" in data["text/plain"]
