# make course : set up and run every lesson on the bundled offline model (the main job)
# make test   : set up and run the tests (unit tests + every notebook executed by nbval), in two processes
# make site   : build the course website (runs/site/html) from the newest run of every notebook
#               (RUN=runs/X for another; starts a run of the course when there is none)
# make test-fast : the unit tests that load no model and execute no notebook (a few minutes)
# make gpu-check : every lesson on an NVIDIA GPU with no Hub; time and GPU memory per lesson
#                  (benchmarks/gpu_check.py; GPU_CHECK_ARGS=--short for minutes)
# make test-latest : the unit tests and lessons 00-01 on the newest transformers, trl, peft, datasets,
#                    accelerate and lighteval, in .venv-latest (what a learner who upgrades gets)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel is on the course machines; elsewhere on Linux add
# TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" to avoid GBs of CUDA packages.
TORCH_PIP_ARGS ?=
# Large CPU tensors (a 262k-row embedding's gradient, autocast's bf16 weight copies) are fresh memory every
# step; backed by 2 MB pages instead of 4 kB ones they cost far fewer page faults: lesson 02's base-model
# SFT took 2.8 s a step instead of 4.1 on a 2-core AMD EPYC. Blocks up to 32 MB come from the heap, which is
# not handed back to the system between steps, so the next step reuses its pages: lesson 02's SFT 8% faster
# there with bf16 units (benchmarks/allocator.py). glibc 2.35+ reads these, older glibc and macOS ignore
# them; results do not change. A GLIBC_TUNABLES of your own comes last, so its settings win.
COURSE_TUNABLES := glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296
export GLIBC_TUNABLES := $(COURSE_TUNABLES)$(if $(GLIBC_TUNABLES),:$(GLIBC_TUNABLES))
# A malloc that keeps what it frees: gperftools' tcmalloc, where the system has it (`make setup` installs
# Debian's libtcmalloc-minimal4 when run as root, and otherwise says how). A training step frees and takes
# back gigabytes; glibc hands every block over 32 MB back to the system, and in a virtual machine whose host
# takes freed memory back (free page reporting), each one returns cleared at ~1.4 GB/s instead of ~50
# (benchmarks/fresh_memory.py). TCMALLOC_RELEASE_RATE=0 keeps freed memory for the next step: lesson 02
# 212-222 -> 180 s on a 2-core AMD EPYC (benchmarks/results/allocator-cpu-avx512-bf16.md). Results do not
# change (tests/test_allocator.py). `make ... TCMALLOC=` runs without it; TCMALLOC=/path picks another copy.
TCMALLOC_PATHS ?= /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4
TCMALLOC ?= $(firstword $(shell ls $(TCMALLOC_PATHS) 2>/dev/null))
# (The report threshold: tcmalloc otherwise prints a line to stderr for every allocation over 1 GB.)
WITH_TCMALLOC = $(if $(TCMALLOC),LD_PRELOAD="$(TCMALLOC)$(if $(LD_PRELOAD), $(LD_PRELOAD))" TCMALLOC_RELEASE_RATE=0 \
  TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=1000000000000)

.PHONY: setup course site test test-fast test-latest gpu-check lab clean-runs chromium tcmalloc course-times

$(VENV)/.installed: pyproject.toml requirements/constraints.txt helpers/assets.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "The course needs Python 3.11 or newer (transformers and trl require it); $(PYTHON) is" \
	    "$$($(PYTHON) --version 2>&1 || echo missing). Install Python 3.11+ and run: make setup PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_PIP_ARGS) torch==2.13.0
	$(PY) -m pip install -c requirements/constraints.txt -e ".[test,site]"
	$(PY) -m helpers assets --install
	$(PY) -m helpers git-filter
	touch $@

setup: $(VENV)/.installed tcmalloc

course: setup
	$(WITH_TCMALLOC) $(PY) -m helpers run --profile cpu

# The README's "Time and memory" table: every notebook as `make course` runs them, in a fresh model cache.
course-times: setup
	$(WITH_TCMALLOC) $(PY) benchmarks/course_times.py $(COURSE_TIMES_ARGS)

# Only the library (no compiler, no service); as root only: a learner's `make course` never asks for a password.
tcmalloc:
	@[ "$(origin TCMALLOC)" != file ] || [ -n "$(TCMALLOC)" ] || [ "$$(uname -s)" != Linux ] || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtcmalloc-minimal4 >/dev/null; } || \
	  echo "Tip: in a virtual machine the lessons train faster on tcmalloc: sudo apt install libtcmalloc-minimal4" \
	    "(Debian, Ubuntu) or sudo dnf install gperftools-libs (Fedora); see the README's \"A malloc that keeps freed memory\"."

# The browser test drives Debian's Chromium (Playwright's own browser download needs the open internet).
chromium:
	@command -v chromium >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; } || \
	  echo "Could not install chromium: tests/test_browser.py will fail. Install Debian's chromium package."

# The site test comes last: it builds the website from the notebooks the first command executed.
# TEST_JOBS pytest processes (pytest-xdist), each with its share of the cores: one process leaves a 2-core CPU
# half idle while a kernel starts, a module imports or a model generates token by token. The lessons stay
# in one process, in order (conftest.py); TEST_JOBS=1 runs everything in one, as before. MKL gets the same
# share: torch's matrix products follow MKL_NUM_THREADS where it is set, and one thread more than the cores
# made the tests that start processes 3-4x slower.
TEST_JOBS ?= 2
TEST_THREADS = $(or $(OMP_NUM_THREADS),$(shell $(PYTHON) -c 'import os; print(max(1, (os.cpu_count() or 1) // $(TEST_JOBS)))'))
test: setup chromium
	OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) $(WITH_TCMALLOC) $(PY) -m pytest $(if $(filter 1,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadscope) \
	  --nbval-lax --nbval-cell-timeout=1800 --durations=20 --ignore=tests/test_site.py tests notebooks solutions
	$(PY) -m pytest --durations=5 tests/test_site.py

site: setup
	$(PY) -m helpers site $(if $(RUN),--run $(RUN))

test-fast: setup
	$(PY) -m pytest -m "not slow" --durations=10 tests

gpu-check: setup
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

test-latest: setup
	$(PY) -m helpers test-latest --python $(PYTHON) --torch-pip-args="$(TORCH_PIP_ARGS)"

lab: setup
	$(WITH_TCMALLOC) $(VENV)/bin/jupyter lab notebooks
