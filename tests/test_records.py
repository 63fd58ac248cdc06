import math

import pytest

from helpers.records import _jsonable


def test_metrics_must_be_finite_plain_values():
    assert _jsonable("x", 0.1234567891) == 0.123457
    with pytest.raises(ValueError, match="finite"):
        _jsonable("loss", math.nan)
    with pytest.raises(TypeError, match="number, string or bool"):
        _jsonable("table", [1, 2])
