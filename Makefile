# The two commands of the README. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-all bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: on this kind of machine 2.13.0 is a CPU build on local disk
	# (an unpinned torch would pull a multi-GB CUDA build). Elsewhere any torch>=2.11 works.
	$(PY) -m pip install -q torch==2.13.0 || $(PY) -m pip install -q "torch>=2.11"
	$(PY) -m pip install -q -e ".[test,ray,tensorboard,onnx]"
	touch $(STAMP)

run: $(STAMP)  ## the main job: the study, quick profile
	$(PY) -m fashionae data
	$(PY) -m fashionae study studies/paper.toml --profile quick

test: $(STAMP)  ## the test suite, without the slowest real-data tests
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m fashionae bench

clean:
	rm -rf $(VENV) runs .pytest_cache

# Mutation testing (not part of CI; up to two hours a module on 2 cores): mutmut plants small
# bugs in the modules whose bugs silently change results and checks that the fast tests fail.
# The modules are pyproject.toml's [tool.mutmut] only_mutate; `make mutation MUTATE=claims` for
# one of them. benchmarks/mutation.md has the last scores.
# OMP_NUM_THREADS=1: mutmut forks its workers, and an OpenMP pool made before a fork deadlocks them.
MUTATE ?=
.PHONY: mutation
mutation: $(STAMP)
	$(PY) -m pip install -q mutmut
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run $(foreach m,$(MUTATE),"fashionae.$(m).*")
	$(VENV)/bin/mutmut results
