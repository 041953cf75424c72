"""One gradient check over the whole node registry: every sample of every type.

A new node type is tested by being registered with samples; a type without samples fails
`test_every_type_has_samples`.
"""

from __future__ import annotations

import pytest

import nodes
from tests.gradcheck import check_float32, check_gradients

# Wired or evaluated by the compiler, not differentiated as nodes.
NO_SAMPLES_NEEDED = {"Input", "Output", "LoopIndex", "Constant"}


def _cases():
    for name, node in sorted(nodes.all_types().items()):
        if node.control or name in ("Input", "Output"):
            continue
        for i, sample in enumerate(node.samples):
            yield pytest.param(name, sample, id=f"{name}-{i}")


CASES = list(_cases())


@pytest.mark.parametrize("type_name, sample", CASES)
def test_gradient(type_name, sample):
    check_gradients(type_name, sample)


@pytest.mark.parametrize("type_name, sample", CASES)
def test_float32_stays_float32(type_name, sample):
    check_float32(type_name, sample)


def test_every_type_has_samples():
    missing = [
        name for name, node in nodes.all_types().items()
        if not node.control and name not in NO_SAMPLES_NEEDED and not node.samples
    ]
    assert not missing, f"node types without samples: {missing}"
