"""Two editor processes, one killed: a third is offered exactly the killed window's work, gets
it back with its trained weights, and leaves the live window's files alone (bench/recovery_kill.py,
which prints the figure)."""

import pytest

from bench import recovery_kill


@pytest.mark.slow
def test_two_windows_and_a_kill_lose_nothing(tmp_path):
    result = recovery_kill.bench(tmp_path)
    assert result["checks"] == {what: True for what in result["checks"]}
    assert result["weights"] > 0
