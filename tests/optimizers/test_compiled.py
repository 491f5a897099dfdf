"""The optimisers without a Keras twin give the same weights from a jit-compiled fit (XLA on
TensorFlow, jax.jit on JAX) as from an eager one; those with their own per-step reduction
(Prodigy, ScheduleFreeSGD) and slots that start from the weights are the ones that could differ."""

import keras
import pytest

from tests.optimizers import harness
from tests.optimizers.test_serialization import CONFIGURED

pytestmark = pytest.mark.backend_agnostic

BEYOND_KERAS = ["RAdam", "NAdamW", "Prodigy", "ScheduleFreeSGD"]


@pytest.mark.slow
@pytest.mark.parametrize("name", BEYOND_KERAS)
def test_compiled_fit_matches_eager(name):
    if keras.backend.backend() == "torch":
        pytest.skip("Keras runs torch eagerly; its jit_compile is torch.compile, not exercised here")
    eager = harness.fit_weights(CONFIGURED[name](), epochs=2, jit_compile=False, run_eagerly=True)
    compiled = harness.fit_weights(CONFIGURED[name](), epochs=2, jit_compile=True)
    assert max(abs(a - b).max() for a, b in zip(eager, harness.fit_weights(CONFIGURED[name](), epochs=0))) > 1e-3
    harness.assert_same_weights(compiled, eager)
