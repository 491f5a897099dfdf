"""Test configuration: the backend comes from KERAS_BACKEND (tensorflow when unset).

Tests that must also pass on JAX and PyTorch are marked ``backend_agnostic``; CI runs the whole
suite on TensorFlow and the ``backend_agnostic`` tests again on JAX and on PyTorch (``make
test-jax``, ``make test-torch``).
"""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# JAX's compiled programs (experiments.compilation_cache) go to a folder of the tests', shared by a
# run's workers and subprocesses, not to the user's cache; every program, however fast it compiled
# (JAX's default keeps only those over a second), so that a program many tests run -- a model's
# validation pass, say -- compiles once even on a machine where the folder starts empty
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "optimizer-lab-tests", "jax-compilation-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# and with one size rule for every process, the commands' included: no limit (the programs a run
# compiles are the same every run, tens of MB); a process with a limit could not write to a folder
# where one without had written (experiments.compilation_cache)
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", "-1")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def backend() -> str:
    return keras.backend.backend()


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts from a clean Keras graph/name state."""
    # free_memory=False skips a full garbage collection (~0.5 s per test on TensorFlow)
    keras.backend.clear_session(free_memory=False)
    yield


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on loopback for the test run (``tests.postgres_server``): a skip where it
    cannot start, a failure under CI, which must test ``--storage postgresql://``."""
    from tests.postgres_server import PostgresServer, Unavailable, in_ci

    server = PostgresServer()
    try:
        server.start()
    except Unavailable as reason:
        if in_ci():
            pytest.fail(f"CI must test --storage postgresql://, and the server did not start: {reason}")
        pytest.skip(f"no PostgreSQL server here: {reason}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path) -> str:
    """A new, empty Optuna storage of each kind the lab offers: a SQLite file, a database on the
    test run's PostgreSQL server."""
    import uuid

    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'storage.db'}"
    return request.getfixturevalue("postgres_server").create_database(f"lab_{uuid.uuid4().hex[:12]}")
