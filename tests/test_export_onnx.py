"""Export to ONNX: the model onnxruntime runs computes what the engine computes.

Every example, on a few rows of its own data, and every node type's samples in every setting
(top level, scan, while, both sides of a scalar branch, select; per-sample while, route and
tree where the sample has a batch) agree with `Program.run` in float32: the largest difference
of an output is at most 1e-5 of its scale (its largest magnitude, or 1 below that). Loops and
branches stay ONNX Loop and If nodes; what the export cannot express is a GraphError naming
the node. The ONNX extra is optional: without onnx and onnxruntime these tests skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from wiregrad.core.export.onnx_target import export_onnx
from wiregrad.nodes.base import NodeType, TensorType

from tests.program_check import document, graph
from tests.sample_graphs import example_feeds, full_params, sample_documents
from wiregrad import core, nodes

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

EXAMPLES = sorted((Path(__file__).parent.parent / "assets" / "examples").glob("*.wg.json"))
CASES = list(sample_documents())
PER_SAMPLE = ("-per-sample-while", "-route", "-tree")
TOLERANCE = 1e-5


def run_onnx(data: bytes, program, feeds: dict) -> dict:
    """The model's outputs by name, run by onnxruntime's CPU provider on one thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    args = {}
    for arg in session.get_inputs():
        dtype = np.int64 if program.input_dtypes[arg.name] == "int64" else program.dtype
        args[arg.name] = np.asarray(feeds[arg.name], dtype=dtype)
    names = [out.name for out in session.get_outputs()]
    return dict(zip(names, session.run(names, args)))


def scaled_difference(expected, got) -> float:
    """max |expected - got| over the scale of expected (its largest magnitude, at least 1)."""
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    assert expected.shape == got.shape, (expected.shape, got.shape)
    if not expected.size:
        return 0.0
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(np.abs(expected - got))) / scale


def compare(doc, params: dict, feeds: dict) -> float:
    """Export `doc` in float32, check the model, run it and the engine; returns the worst
    scaled difference over the outputs, asserting it is within TOLERANCE."""
    program = core.compile(doc, "float32")
    params = {name: np.asarray(value, dtype=np.float32) for name, value in params.items()}
    data = export_onnx(doc, params=params)  # which runs onnx.checker.check_model on it
    got = run_onnx(data, program, feeds)
    expected = program.run(params, feeds)
    assert set(got) == set(expected)
    worst = 0.0
    for name, value in expected.items():
        d = scaled_difference(value, got[name])
        assert d <= TOLERANCE, f"output {name}: difference {d:.3g} of its scale"
        worst = max(worst, d)
    return worst


def by_name(name: str) -> Path:
    return EXAMPLES[[p.name for p in EXAMPLES].index(name)]


def op_types(graph) -> list:
    """Every operator of a graph and of the subgraphs in its attributes, in order."""
    out = []
    for node in graph.node:
        out.append(node.op_type)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                out += op_types(attr.g)
    return out


# -- parity with the engine -------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name.split(".")[0])
def test_examples_match_the_engine_in_float32(path):
    doc = core.load(path)
    program = core.compile(doc)
    compare(doc, program.init_params(3), example_feeds(doc, program, path))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_node_type_matches_the_engine(case):
    name, doc, data_params, feeds = case
    params = full_params(doc, data_params)
    inside = [path for path in core.compile(doc).batch_level
              if path.startswith(("loop/", "br/"))] if name.endswith(PER_SAMPLE) else []
    if inside:
        # The masked forms run a body on the whole batch: a node whose result depends on the
        # batch (Softmax over axis 0) is refused by name.
        with pytest.raises(core.GraphError, match="node '" + inside[0]) as info:
            export_onnx(doc, params=params)
        assert info.value.node == inside[0]
        return
    compare(doc, params, feeds)


@pytest.mark.parametrize("cond", [1.0, -1.0], ids=["then", "else"])
def test_nested_control_flow_matches_the_engine(cond):
    """A scan whose body holds a scalar branch, one side of which is a repeat loop reading
    its LoopIndex: Loop in If in Loop, each reading values of the graphs around it."""
    inner = graph([("v", "Input", {"role": "carry"}), ("t", "Tanh", {}), ("i", "LoopIndex", {}),
                   ("a", "Add", {}), ("vn", "Output", {"role": "carry", "carry": "v"})],
                  [("v.y", "t.x"), ("t.y", "a.a"), ("i.y", "a.b"), ("a.y", "vn.x")])
    then = graph([("v", "Input", {}), ("fc", "Linear", {"out_features": 3}), ("o", "Output", {})],
                 [("v.y", "fc.x"), ("fc.y", "o.x")])
    other = graph([("v", "Input", {}), ("lp", "Loop", {"mode": "repeat", "count": 2},
                                         {"body": inner}), ("o", "Output", {})],
                  [("v.y", "lp.v"), ("lp.vn", "o.x")])
    body = graph([("h", "Input", {"role": "carry"}), ("x", "Input", {"role": "sequence"}),
                  ("c", "Input", {}), ("s", "Add", {}),
                  ("br", "Branch", {"mode": "scalar"}, {"then": then, "else": other}),
                  ("hn", "Output", {"role": "carry", "carry": "h"}), ("st", "Output", {})],
                 [("h.y", "s.a"), ("x.y", "s.b"), ("c.y", "br.cond"), ("s.y", "br.v"),
                  ("br.o", "hn.x"), ("br.o", "st.x")])
    doc = document([("x", "Input", {"shape": [None, 3]}), ("h0", "Constant", {"value": [0.0] * 3}),
                    ("c", "Constant", {"value": cond}),
                    ("loop", "Loop", {"mode": "scan", "axis": 1}, {"body": body}),
                    ("st", "Output", {}), ("fin", "Output", {})],
                   [("x.y", "loop.x"), ("h0.y", "loop.h"), ("c.y", "loop.c"),
                    ("loop.st", "st.x"), ("loop.hn", "fin.x")])
    feeds = {"x": np.random.default_rng(0).normal(size=(2, 4, 3))}
    compare(doc, core.compile(doc).init_params(1), feeds)


@pytest.mark.parametrize("steps", [0, 3])
def test_loops_of_no_steps_give_the_engines_zeros(steps):
    body = graph([("h", "Input", {"role": "carry"}), ("x", "Input", {"role": "sequence"}),
                  ("a", "Add", {}), ("s", "Output", {}),
                  ("hn", "Output", {"role": "carry", "carry": "h"})],
                 [("h.y", "a.a"), ("x.y", "a.b"), ("a.y", "s.x"), ("a.y", "hn.x")])
    scan = document([("x", "Input", {"shape": [None, 3]}), ("h0", "Constant", {"value": [1.0] * 3}),
                     ("loop", "Loop", {"mode": "scan"}, {"body": body}),
                     ("st", "Output", {}), ("fin", "Output", {})],
                    [("x.y", "loop.x"), ("h0.y", "loop.h"), ("loop.s", "st.x"),
                     ("loop.hn", "fin.x")])
    compare(scan, {}, {"x": np.ones((2, steps, 3))})
    body = graph([("h", "Input", {"role": "carry"}), ("t", "Tanh", {}), ("s", "Output", {}),
                  ("hn", "Output", {"role": "carry", "carry": "h"})],
                 [("h.y", "t.x"), ("t.y", "s.x"), ("t.y", "hn.x")])
    repeat = document([("x", "Input", {"shape": [3]}),
                       ("loop", "Loop", {"mode": "repeat", "count": steps}, {"body": body}),
                       ("st", "Output", {}), ("fin", "Output", {})],
                      [("x.y", "loop.h"), ("loop.s", "st.x"), ("loop.hn", "fin.x")])
    compare(repeat, {}, {"x": np.ones((2, 3))})


# -- what the model is ------------------------------------------------------------------------


def test_loops_and_branches_stay_onnx_control_flow():
    """A 50-step LSTM is one Loop whose body holds the cell's two products once."""
    model = onnx.load_from_string(export_onnx(core.load(by_name("lstm-sequence.wg.json"))))
    top = [node.op_type for node in model.graph.node]
    assert "Loop" in top
    assert op_types(model.graph).count("Gemm") == 2
    assert "Loop" in op_types(onnx.load_from_string(export_onnx(
        core.load(by_name("adaptive-while.wg.json")))).graph)
    _, doc, data_params, _ = next(c for c in CASES if c[0] == "Linear-0-branch-then")
    model = onnx.load_from_string(export_onnx(doc, params=full_params(doc, data_params)))
    assert "If" in [node.op_type for node in model.graph.node]


def test_inputs_outputs_and_initializers():
    """Inputs are the Inputs by id with a symbolic batch, outputs the Outputs, parameters
    initializers under the engine's names; naming Outputs drops the Inputs they do not need."""
    doc = core.load(by_name("iris-csv.wg.json"))
    program = core.compile(doc)
    model = onnx.load_from_string(export_onnx(doc))
    onnx.checker.check_model(model, full_check=True)  # with ONNX's own shape inference
    inputs = {i.name: i for i in model.graph.input}
    assert set(inputs) == set(program.input_shapes)
    assert {o.name for o in model.graph.output} == set(program.output_names)
    first = next(iter(inputs.values())).type.tensor_type.shape.dim[0]
    assert first.dim_param == "batch"
    assert set(program.param_names) <= {t.name for t in model.graph.initializer}
    losses = [k for k, s in program.output_shapes.items() if s == ()]
    predictions = [k for k in program.output_names if k not in losses]
    small = onnx.load_from_string(export_onnx(doc, outputs=predictions))
    assert [o.name for o in small.graph.output] == predictions
    assert len(small.graph.input) < len(model.graph.input)  # no target


def test_writes_the_file_it_returns(tmp_path):
    doc = core.load(by_name("sine-regression.wg.json"))
    target = tmp_path / "model.onnx"
    data = export_onnx(doc, path=target)
    assert target.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary left


def test_default_params_are_init_params_seed_0():
    doc = core.load(by_name("sine-regression.wg.json"))
    program = core.compile(doc)
    assert export_onnx(doc) == export_onnx(doc, params=program.init_params(0))
    assert export_onnx(doc) != export_onnx(doc, params=program.init_params(1))


# -- what it refuses --------------------------------------------------------------------------


class _NoOnnx(NodeType):
    """A type with numpy and torch rules but no ONNX rule."""

    name = "NoOnnxRule"
    np_forward = "{x}"
    np_backward: ClassVar[dict] = {"x": "{gy}"}
    torch_forward = "{x}"

    def infer(self, p, ins):
        return {"y": TensorType(ins["x"].shape)}


def test_a_type_without_a_rule_is_a_graph_error_naming_the_node(monkeypatch):
    monkeypatch.setitem(nodes.registry._TYPES, "NoOnnxRule", _NoOnnx())
    doc = document([("x", "Input", {"shape": [3]}), ("cell", "NoOnnxRule", {}),
                    ("y", "Output", {})], [("x.y", "cell.x"), ("cell.y", "y.x")])
    with pytest.raises(core.GraphError, match=r"node 'cell' \(NoOnnxRule\): no ONNX rule") as info:
        export_onnx(doc)
    assert info.value.node == "cell"


def test_a_batch_mixing_node_in_a_route_branch_is_refused_by_name():
    body = [("x", "Input", {}), ("m", "Mean", {"axis": 0, "keepdims": True}),
            ("d", "Sub", {}), ("y", "Output", {})]
    wires = [("x.y", "m.x"), ("x.y", "d.a"), ("m.y", "d.b"), ("d.y", "y.x")]
    doc = document([("x", "Input", {"shape": [2]}), ("c", "Input", {"shape": []}),
                    ("br", "Branch", {"mode": "route"},
                     {"then": graph(body, wires), "else": graph(body, wires)}),
                    ("y", "Output", {})],
                   [("x.y", "br.x"), ("c.y", "br.cond"), ("br.y", "y.x")])
    with pytest.raises(core.GraphError, match="node 'br/then/m'.*route Branch 'br'"):
        export_onnx(doc)


@pytest.mark.parametrize("use", ["carry", "stack"])
def test_a_per_sample_while_in_a_route_branch(use):
    """Its final carries are per sample, so exact; its stacked steps would be as long as the
    longest run over the whole batch, not over the samples routed to it: refused by name."""
    inner = graph([("h", "Input", {"role": "carry"}), ("n", "Input", {}), ("i", "LoopIndex", {}),
                   ("d", "Sub", {}), ("t", "Tanh", {}), ("s", "Output", {}),
                   ("hn", "Output", {"role": "carry", "carry": "h"}),
                   ("go", "Output", {"role": "continue"})],
                  [("h.y", "t.x"), ("t.y", "hn.x"), ("t.y", "s.x"), ("n.y", "d.a"),
                   ("i.y", "d.b"), ("d.y", "go.x")])
    side = graph([("h", "Input", {}), ("n", "Input", {}),
                  ("w", "Loop", {"mode": "while", "per_sample": True, "max_iter": 5},
                   {"body": inner}), ("o", "Output", {})],
                 [("h.y", "w.h"), ("n.y", "w.n"), ("w.hn" if use == "carry" else "w.s", "o.x")])
    doc = document([("x", "Input", {"shape": [3]}), ("n", "Input", {"shape": []}),
                    ("c", "Input", {"shape": []}),
                    ("br", "Branch", {"mode": "route"}, {"then": side, "else": side}),
                    ("y", "Output", {})],
                   [("x.y", "br.h"), ("n.y", "br.n"), ("c.y", "br.cond"), ("br.o", "y.x")])
    feeds = {"x": np.random.default_rng(0).normal(size=(4, 3)),
             "n": np.array([1.0, 3.0, 2.0, 4.0]), "c": np.array([1.0, -1.0, 1.0, -1.0])}
    if use == "carry":
        compare(doc, {}, feeds)
    else:
        with pytest.raises(core.GraphError, match=r"node 'br/(then|else)/w' \(Loop\)"):
            export_onnx(doc)


def test_unknown_outputs_and_short_params_are_graph_errors():
    doc = core.load(by_name("sine-regression.wg.json"))
    with pytest.raises(core.GraphError, match="no Output named 'nope'"):
        export_onnx(doc, outputs=["nope"])
    params = core.compile(doc).init_params(0)
    params.pop(next(iter(params)))
    with pytest.raises(core.GraphError, match="params lack"):
        export_onnx(doc, params=params)
