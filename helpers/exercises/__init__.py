"""The self-checks of the exercise notebooks: `checks` (how a check reports), `lesson01` .. `lesson05`.

An exercise notebook calls `lessonNN.check_...(answer)`; the check prints a verdict and a hint, and
stores its result in the cell's output for `python -m helpers grade`.
"""
from .. import submodules_on_first_use

__getattr__ = submodules_on_first_use(__name__, __path__)
