"""lab.optimizers.NAdamW against AlgoPerf's formula (NumPy) and, with ``momentum_decay``, against
torch.optim.NAdam(decoupled_weight_decay=True)."""

import pytest

from lab.optimizers import NAdamW
from tests.optimizers import harness, torch_reference
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


def test_matches_algoperf_reference():
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        optimizer = NAdamW(lr, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=1e-3)
        harness.assert_matches_reference(optimizer, reference.NAdamW(0.8, 0.95, 1e-3, weight_decay=0.1), lrs)


@pytest.mark.parametrize("momentum_decay", [4e-3, 1.0])
def test_momentum_decay_matches_torch_nadam(momentum_decay):
    torch = pytest.importorskip("torch")
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        expected = torch_reference.trajectory(
            lambda params: torch.optim.NAdam(
                params, lr=lrs[0], betas=(0.8, 0.95), eps=1e-3, weight_decay=0.1,
                momentum_decay=momentum_decay, decoupled_weight_decay=True, foreach=False,
            ),
            lrs,
        )
        optimizer = NAdamW(lr, 0.1, 0.8, 0.95, 1e-3, momentum_decay=momentum_decay)
        torch_reference.assert_matches(harness.run_optimizer(optimizer), expected)


def test_rejects_missing_or_bad_arguments():
    for arguments, name in [({"weight_decay": None}, "weight_decay"), ({"weight_decay": -1.0}, "weight_decay"),
                            ({"momentum_decay": 0.0}, "momentum_decay"), ({"epsilon": 0.0}, "epsilon")]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            NAdamW(**arguments)
