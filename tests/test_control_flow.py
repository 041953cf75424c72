"""Every node type's gradients inside a scan, a while loop and both branch modes.

For each registered type and each of its samples, tests/sample_graphs.py puts the node into a
loop body or a branch side; every gradient, including those with respect to the node's inputs,
is checked against central differences in float64. (At the top level, the node library's own
gradient test covers it.) A new node type is covered by being registered.
"""

from __future__ import annotations

import pytest

from tests.program_check import check_gradients
from tests.sample_graphs import full_params, sample_documents
from wiregrad import core

CASES = [pytest.param(doc, params, feeds, id=case)
         for case, doc, params, feeds in sample_documents() if not case.endswith("-plain")]


@pytest.mark.parametrize("doc,params,feeds", CASES)
def test_gradients_in_loops_and_branches(doc, params, feeds):
    program = core.compile(doc, "float64")
    check_gradients(program, full_params(doc, params), feeds)
