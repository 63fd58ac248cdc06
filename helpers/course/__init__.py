"""For instructors and CI, never imported by a lesson: `cli` (`python -m helpers ...`), `runner`
(notebooks executed with papermill, one summary per run), `sweep`, `grading`, `make_exercises`
(exercises/ from solutions/), `colab` (the Open-in-Colab cells) and `local_hub` (a Hub profile's
names served offline from a local Hugging Face cache, for tests)."""
from pathlib import Path

from .. import submodules_on_first_use

COURSE_ROOT = Path(__file__).resolve().parents[2]  # the repository: notebooks/, exercises/, solutions/

__getattr__ = submodules_on_first_use(__name__, __path__)
