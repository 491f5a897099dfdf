"""The suite's worker groups hold: under ``pytest -n N --dist loadgroup`` (``make test``) a test
marked ``xdist_group`` carries its group in its id, which is how pytest-xdist sends a group's tests
to one worker, where they share a session fixture (a reference run, a database server) made once.

A pytest release that pytest-xdist cannot name groups in (9.2 with xdist 3.8) drops the marks
silently: each worker then makes its own reference runs, and the suite runs minutes longer. This
test fails instead."""

import pytest


@pytest.mark.xdist_group("worker_groups_check")
def test_a_grouped_test_carries_its_group_under_loadgroup(request):
    if not getattr(request.config.option, "loadgroup", False):  # pytest-xdist's worker sets it under loadgroup
        pytest.skip("not run in a pytest-xdist worker with --dist loadgroup: groups do not apply")
    assert request.node.nodeid.endswith("@worker_groups_check"), (
        f"{request.node.nodeid}: pytest-xdist's --dist loadgroup did not name the test's group; "
        "use the pytest version requirements.txt pins")
