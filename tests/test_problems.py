"""lab.problems: a problem is data, so it travels to worker processes."""

import pickle

import pytest

from lab.problems import PROBLEMS


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_problem_pickles_with_its_quick_overrides(name):
    problem = PROBLEMS[name]
    copy = pickle.loads(pickle.dumps(problem))
    # functools.partial has no equality: the data loaders compare by what they call (the grid's
    # data cache keys them the same way)
    assert repr(copy) == repr(problem) and copy.model is problem.model
    assert repr(copy.quick_version()) == repr(problem.quick_version())
    with pytest.raises(TypeError):  # still read-only
        copy.quick["epochs"] = 1
