"""The ONNX target's builder: the graphs being written, and what a node type's ONNX rule sees.

A node type declares its ONNX rule in its own class (nodes/*.py) as `onnx_forward`: the name of
one ONNX operator taking the type's inputs in port order ("Relu", "MatMul"), or a method
`onnx_forward(self, p, g)` that writes operators through `g`, a `RuleBuilder`, and returns the
name of its output `y` (or a dict output port -> name). The node library never imports onnx:
rules speak in operator names, attributes and the few dtype words "float" (the model's float
type), "int64" and "bool"; this module turns them into protobuf.

Names are unique across the whole model (ONNX subgraphs share one namespace with their outer
graph): values are named after the node they belong to (`rnn/cell`, `rnn/cell/Sigmoid_2`),
weights keep the engine's parameter names (`rnn/cell.weight_ih`), and every constant and
weight is an initializer of the main graph, which loop bodies and branches read from the outer
scope.
"""

from __future__ import annotations

import numpy as np

from ..errors import GraphError

try:  # the optional extra (.[onnx]); export_onnx says so when it is missing
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover - exercised only without the extra
    onnx = TensorProto = helper = numpy_helper = None

OPSET = 18
IR_VERSION = 8  # what opset 18 needs: runtimes older than the onnx package still load it


def elem_type(dtype: str, float_type: str) -> int:
    """The TensorProto element type of a dtype word ("float", "int64", "bool")."""
    word = float_type if dtype == "float" else dtype
    return {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
            "int64": TensorProto.INT64, "bool": TensorProto.BOOL}[word]


class Names:
    """Unique value names for the whole model, readable: a stem, then _1, _2 on reuse."""

    def __init__(self):
        self.used: set = set()

    def reserve(self, name: str) -> None:
        self.used.add(name)

    def new(self, stem: str) -> str:
        name, k = stem, 0
        while name in self.used:
            k += 1
            name = f"{stem}_{k}"
        self.used.add(name)
        return name


class ModelBuilder:
    """What the graphs of one model share: names, initializers (weights and constants)."""

    def __init__(self, float_type: str, params: dict):
        self.float_type = float_type
        self.params = params  # engine parameter name -> array
        self.names = Names()
        for name in params:  # a weight's initializer is named exactly as the engine names it
            self.names.reserve(name)
        self.initializers: list = []
        self._consts: dict = {}
        self._weights: set = set()

    def weight(self, name: str) -> str:
        """The initializer holding the engine's parameter `name` (made on first use)."""
        if name not in self._weights:
            value = np.asarray(self.params[name], dtype=self.float_type)
            self.initializers.append(numpy_helper.from_array(value, name))
            self._weights.add(name)
        return name

    def const(self, value, dtype: str = "float", stem: str = "const") -> str:
        """An initializer holding `value` (one per distinct value and dtype)."""
        np_type = {"float": self.float_type, "int64": np.int64, "bool": np.bool_}[dtype]
        array = np.asarray(value, dtype=np_type)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = self.names.new(stem)
            self.initializers.append(numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]


class OnnxGraph:
    """One graph being written: the model's main graph, a Loop body or an If branch."""

    def __init__(self, model: ModelBuilder, name: str):
        self.model = model
        self.name = name
        self.nodes: list = []
        self.inputs: list = []
        self.outputs: list = []

    def op(self, op_type: str, inputs, stem: str, outputs: int = 1, doc: str = "",
           **attrs) -> list:
        """Append one operator; inputs are value names (None: an optional input left out).
        Returns the names of its outputs."""
        names = [self.model.names.new(f"{stem}/{op_type}") for _ in range(outputs)]
        node = helper.make_node(op_type, ["" if i is None else i for i in inputs], names,
                                name=names[0], **attrs)
        if doc:
            node.doc_string = doc
        self.nodes.append(node)
        return names

    def add_node(self, node) -> None:
        self.nodes.append(node)

    def input(self, name: str, dtype: str, shape=None) -> None:
        self.inputs.append(value_info(name, elem_type(dtype, self.model.float_type), shape))

    def output(self, name: str, dtype: str, shape=None) -> None:
        self.outputs.append(value_info(name, elem_type(dtype, self.model.float_type), shape))

    def proto(self, initializers=()):
        return helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                 initializer=list(initializers))


def value_info(name: str, elem: int, shape=None):
    """A typed value; shape None leaves the shape out (a body's values: their lengths change)."""
    return helper.make_tensor_value_info(name, elem, shape)


class RuleBuilder:
    """What one node's ONNX rule sees (`g`): its inputs and their types, its weights, and ways
    to write operators. Every name it returns is an ONNX value name."""

    def __init__(self, graph: OnnxGraph, node_path: str, type_name: str, ins: dict,
                 in_types: dict, out_types: dict, weights: dict, label: str = ""):
        self.graph = graph
        self.path = node_path
        self.type_name = type_name
        self.ins = ins  # port -> value name (connected ports only)
        self.in_types = in_types  # port -> TensorType
        self.out_types = out_types  # output port -> TensorType
        self.weights = weights  # weight name -> engine parameter name
        self.label = label

    # -- reading ----------------------------------------------------------------------------

    @property
    def float_type(self) -> str:
        """The model's float type: "float32" or "float64"."""
        return self.graph.model.float_type

    @property
    def out_type(self):
        return self.out_types.get("y")

    def x(self, port: str = "x") -> str:
        return self.ins[port]

    def has(self, port: str) -> bool:
        return port in self.ins

    def t(self, port: str = "x"):
        return self.in_types[port]

    def ndim(self, port: str = "x") -> int:
        return self.in_types[port].ndim

    def is_int(self, port: str) -> bool:
        return self.in_types[port].dtype == "int64"

    def weight(self, name: str) -> str:
        return self.graph.model.weight(self.weights[name])

    def fail(self, message: str):
        """Stop the export with an error naming this node."""
        raise GraphError(f"node {self.path!r} ({self.type_name}): {message}", self.path)

    # -- writing ----------------------------------------------------------------------------

    def op(self, op_type: str, *inputs, outputs: int = 1, **attrs):
        """One operator; returns its output's name (a list of them when outputs > 1)."""
        names = self.graph.op(op_type, inputs, self.path, outputs, self.label, **attrs)
        return names if outputs > 1 else names[0]

    def const(self, value, dtype: str = "float") -> str:
        return self.graph.model.const(value, dtype)

    def ints(self, values) -> str:
        """A 1-D int64 constant (axes, shapes, pads as operator inputs take them)."""
        return self.const(list(values), "int64")

    def cast(self, x: str, dtype: str) -> str:
        return self.op("Cast", x, to=elem_type(dtype, self.float_type))

    def zero(self, port: str) -> str:
        """0 in the dtype of an input port (int64 conditions compare with an int64 0)."""
        return self.const(0, "int64" if self.is_int(port) else "float")

    def shape(self, x: str) -> str:
        return self.op("Shape", x)

    def dim(self, x: str, axis: int) -> str:
        """The length of x's `axis`, as a 1-D int64 of one entry."""
        if axis == -1:
            return self.op("Shape", x, start=-1)
        return self.op("Shape", x, start=axis, end=axis + 1)

    def count(self, x: str, shape: tuple, axes) -> str:
        """How many elements the `axes` of x (static `shape`) hold, as a float scalar: a
        constant where the lengths are known."""
        dims = [shape[a] for a in axes]
        if all(d is not None for d in dims):
            return self.const(float(np.prod(dims)))
        lengths = self.op("Gather", self.shape(x), self.ints(list(axes)), axis=0)
        return self.cast(self.op("ReduceProd", lengths, keepdims=0), "float")

    def reduce(self, op_type: str, x: str, axes, keepdims: bool) -> str:
        """A Reduce* over `axes` (a list; None: every axis)."""
        if axes is None:
            return self.op(op_type, x, keepdims=int(keepdims))
        if not axes:  # numpy reduces nothing over no axes; ONNX would reduce everything
            return self.op("Identity", x)
        return self.op(op_type, x, self.ints(axes), keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes) -> str:
        return self.op("Unsqueeze", x, self.ints(axes))

    def squeeze(self, x: str, axes) -> str:
        return self.op("Squeeze", x, self.ints(axes))

    def reshape(self, x: str, shape) -> str:
        return self.op("Reshape", x, self.ints(shape))

    def where(self, cond: str, a: str, b: str) -> str:
        return self.op("Where", cond, a, b)

    def positive(self, port: str) -> str:
        """port > 0, as bool (conditions and masks)."""
        return self.op("Greater", self.x(port), self.zero(port))


def rule_of(node_type):
    """A type's ONNX rule (None if it has none)."""
    return getattr(node_type, "onnx_forward", None)


def apply_rule(node_type, p: dict, g: RuleBuilder) -> dict:
    """Write one node by its type's rule; returns output port -> value name."""
    fwd = rule_of(node_type)
    if fwd is None:
        g.fail("no ONNX rule yet; export to numpy or torch instead, or replace the node")
    if isinstance(fwd, str):
        ports = [port for port in node_type.input_ports(p) if port in g.ins]
        got = g.op(fwd, *(g.ins[port] for port in ports))
    else:
        got = fwd(p, g)
    return got if isinstance(got, dict) else {"y": got}


def require_onnx() -> None:
    if onnx is None:
        raise GraphError("the ONNX export needs the onnx package: pip install 'wiregrad[onnx]' "
                         "(or pip install onnx)")
