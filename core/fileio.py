"""Reading and writing `.wg.json` files: parse to plain records, check, migrate, build; save atomically.

Loading never runs code from the file: it is JSON read into dicts and lists, checked key by key,
then turned into a `Document`. Every problem is a `GraphError` naming the node and saying what
to do. Saving goes through `atomic_write` (core/atomic.py): a crash mid-save leaves the old file
whole, and the file keeps its links, mode and owner. A document saved without changes is
written back byte for byte as it was read.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from pathlib import Path

from .. import nodes

# SaveError is re-exported: writers of user files import it with atomic_write from here.
from .atomic import SaveError, atomic_write  # noqa: F401
from .document import BODY_KEYS, Document, Edge, Graph, Node, is_valid_id, node_path
from .errors import GraphError
from .training_section import NAMES, moved
from .well_formed import structural_errors

TOP_KEYS = {"format", "version", "name", "graph", "blocks", "training", "ui"}
NODE_KEYS = {"id", "type", "params", "label", "shares", "pos", *BODY_KEYS}
TRAINING_KEYS = NAMES  # the training section's keys: core/training_section.py owns them
EDGE_KEYS = {"from", "to"}



def migrate_1_to_2(data: dict) -> dict:
    """Version 2 only adds to version 1 (format.md): a version-1 file means the same."""
    return {**data, "version": 2}


# Older versions of the format, and how to bring each one up a version: functions from plain
# dict to plain dict.
MIGRATIONS: dict = {1: migrate_1_to_2}


def load(path) -> Document:
    """Read a document from a file. Raises GraphError for anything wrong with it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GraphError(f"{path}: no such file") from None
    except OSError as exc:
        raise GraphError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    doc = loads(raw, source=str(path))
    doc.path = str(path)
    doc.folder = os.path.dirname(os.path.abspath(path))
    return doc


def loads(text, source: str = "document") -> Document:
    """Read a document from JSON text or bytes."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GraphError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    # Some editors start a UTF-8 file with a byte-order mark; it is not part of the JSON.
    text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_no_special_numbers)
    except json.JSONDecodeError as exc:
        raise GraphError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}") from None
    except _NotJSON as exc:
        raise GraphError(f"{source}: not valid JSON: {exc}") from None
    except RecursionError:
        raise GraphError(f"{source}: nested too deeply to be a Wiregrad document") from None
    doc = from_dict(data, source)
    if doc.to_dict() == _normal_form(data):
        # Nothing was migrated or renamed: saving unchanged gives back these very bytes.
        doc._saved_text = text
        doc._saved_dict = doc.to_dict()
    return doc


class _NotJSON(ValueError):
    """Text Python's json module takes but JSON does not (NaN), or that is ambiguous."""


def _no_duplicate_keys(pairs: list) -> dict:
    # json.loads keeps the last of two equal keys; a hand-edited file with two "params" would
    # silently lose one, so say so instead.
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _NotJSON(f"the key {key!r} appears twice in one object; keep one")
        out[key] = value
    return out


def _no_special_numbers(name: str):
    # NaN and Infinity are not JSON: other tools cannot read a file that holds them.
    raise _NotJSON(f"{name} is not a JSON number; write a finite number")


def _normal_form(data: dict) -> dict:
    """The document dict as Document.to_dict writes it: without the entries that only repeat
    a default ("name": "", "params": {}, "label": null, ...). A file that spells a default out
    is unchanged by loading, so it must still be written back byte for byte."""
    defaults = {"name": "", "blocks": {}, "training": None, "ui": {}}
    out = {k: v for k, v in data.items() if not (k in defaults and v == defaults[k])}
    out = json.loads(json.dumps(out))  # a copy to trim; it holds only JSON values
    graphs = [out["graph"], *out.get("blocks", {}).values()]
    while graphs:
        graph = graphs.pop()
        graph.setdefault("nodes", [])
        graph.setdefault("edges", [])
        for node in graph["nodes"]:
            for key, empty in (("params", {}), ("label", None), ("pos", None)):
                if key in node and node[key] == empty:
                    del node[key]
            graphs.extend(node[key] for key in BODY_KEYS if key in node)
    return out


def from_dict(data, source: str = "document") -> Document:
    """Check a parsed document, migrate it to the current version and build the model."""
    data = migrate(_check_header(data, source), source)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise GraphError(f"{source}: unknown key {min(unknown)!r} at the top level "
                         f"(allowed: {', '.join(sorted(TOP_KEYS))})")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise GraphError(f"{source}: 'name' must be text")
    graph = _build_graph(data.get("graph"), (), "graph")
    blocks_data = data.get("blocks", {})
    if not isinstance(blocks_data, dict):
        raise GraphError(f"{source}: 'blocks' must be an object of block definitions")
    blocks = {}
    for block_name, body in blocks_data.items():
        if not is_valid_id(block_name):
            raise GraphError(f"block name {block_name!r} must be an identifier")
        blocks[block_name] = _build_graph(body, ("@" + block_name,), f"blocks.{block_name}")
    training = data.get("training")
    if training is not None and not isinstance(training, dict):
        raise GraphError(f"{source}: 'training' must be an object")
    unknown = sorted(set(training or {}) - set(TRAINING_KEYS))
    if unknown:
        raise GraphError(f"{source}: unknown key {unknown[0]!r} in the training section "
                         f"(allowed: {', '.join(TRAINING_KEYS)})")
    ui = data.get("ui", {})
    if not isinstance(ui, dict):
        raise GraphError(f"{source}: 'ui' must be an object")
    doc = Document(graph, name, blocks, training, ui)
    errors = structural_errors(doc)
    if errors:
        raise GraphError.collect(errors)
    return doc


def _check_header(data, source: str) -> dict:
    if not isinstance(data, dict):
        raise GraphError(f"{source}: a Wiregrad document is a JSON object")
    if data.get("format") != Document.FORMAT:
        raise GraphError(f"{source}: not a Wiregrad graph (format is {data.get('format')!r}, "
                         f"expected {Document.FORMAT!r})")
    if "version" not in data:
        raise GraphError(f"{source}: no 'version'; add \"version\": {Document.VERSION} after "
                         "\"format\"")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise GraphError(f"{source}: 'version' must be a whole number >= 1, got {version!r}")
    if version > Document.VERSION:
        raise GraphError(f"{source}: written in format version {version}, but this Wiregrad "
                         f"reads up to version {Document.VERSION}; update Wiregrad to open it")
    return data


def migrate(data: dict, source: str = "document") -> dict:
    """Bring a plain document dict up to the current version, one version at a time."""
    while data["version"] < Document.VERSION:
        step = MIGRATIONS.get(data["version"])
        if step is None:
            raise GraphError(f"{source}: no migration from format version {data['version']}")
        data = step(data)
    return data


def _build_graph(data, ref: tuple, where: str) -> Graph:
    if not isinstance(data, dict):
        raise GraphError(f"{where} must be an object with 'nodes' and 'edges'")
    unknown = set(data) - {"nodes", "edges"}
    if unknown:
        raise GraphError(f"{where}: unknown key {min(unknown)!r} (a graph has nodes and edges)")
    nodes_data, edges_data = data.get("nodes", []), data.get("edges", [])
    if not isinstance(nodes_data, list) or not isinstance(edges_data, list):
        raise GraphError(f"{where}: 'nodes' and 'edges' must be lists")
    graph = Graph()
    for i, item in enumerate(nodes_data):
        graph.nodes.append(_build_node(item, ref, f"{where}.nodes[{i}]"))
    for i, item in enumerate(edges_data):
        graph.edges.append(_build_edge(item, ref, f"{where}.edges[{i}]"))
    return graph


def _build_node(data, ref: tuple, where: str) -> Node:
    if not isinstance(data, dict):
        raise GraphError(f"{where} must be an object")
    node_id = data.get("id")
    if not is_valid_id(node_id):
        raise GraphError(f"{where}: id {node_id!r} is not an identifier (letters, digits, _; "
                         "not starting with a digit)")
    path = node_path(ref, node_id)
    unknown = set(data) - NODE_KEYS
    if unknown:
        raise GraphError(f"{path}: unknown key {min(unknown)!r} in a node "
                         f"(allowed: {', '.join(sorted(NODE_KEYS))})", path)
    type_name = data.get("type")
    if not isinstance(type_name, str):
        raise GraphError(f"{path}: 'type' must name a node type", path)
    current = nodes.canonical_name(type_name)
    if current is None:
        close = difflib.get_close_matches(type_name, sorted(nodes.all_types()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise GraphError(f"{path}: unknown node type {type_name!r}{hint}", path)
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise GraphError(f"{path}: 'params' must be an object", path)
    # Unknown keys are errors (format.md); bad values are left to the compiler, so that the
    # editor can open the file and show the problem on the node.
    known = {decl.name for decl in nodes.get(current).params}
    unknown = set(params) - known
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise GraphError(f"{path}: unknown parameter {min(unknown)!r} of a {current} node "
                         f"(its parameters: {allowed})", path)
    label = data.get("label")
    if label is not None and not isinstance(label, str):
        raise GraphError(f"{path}: 'label' must be text", path)
    shares = data.get("shares")
    if shares is not None and not is_valid_id(shares):
        raise GraphError(f"{path}: 'shares' must be the id of a node of the same graph, got "
                         f"{shares!r}", path)
    pos = data.get("pos")
    if pos is not None and not (isinstance(pos, list) and len(pos) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in pos)):
        raise GraphError(f"{path}: 'pos' must be [x, y]", path)
    node = Node(node_id, current, dict(params), label, pos, shares=shares)
    node_type = nodes.get(current)
    wanted = getattr(node_type, "bodies", ())
    for key in BODY_KEYS:
        if key in data:
            if key not in wanted:
                raise GraphError(f"{path}: a {current} node has no {key!r} body", path)
            node.bodies[key] = _build_graph(data[key], ref + (node_id, key), f"{path}.{key}")
    for key in wanted:
        if key not in node.bodies:
            raise GraphError(f"{path}: a {current} node needs a {key!r} body", path)
    return node


def _build_edge(data, ref: tuple, where: str) -> Edge:
    if not isinstance(data, dict) or set(data) != EDGE_KEYS:
        if isinstance(data, dict) and set(data) - EDGE_KEYS:
            raise GraphError(f"{where}: unknown key {min(set(data) - EDGE_KEYS)!r} in an "
                             "edge (an edge has 'from' and 'to')")
        raise GraphError(f"{where}: an edge is {{\"from\": \"node.port\", \"to\": \"node.port\"}}")
    for key in ("from", "to"):
        value = data[key]
        if not isinstance(value, str) or value.count(".") != 1:
            raise GraphError(f"{where}: {key!r} must be 'node.port', got {value!r}")
    return Edge.parse(data["from"], data["to"])


# ---------------------------------------------------------------------------------------------


# A lone surrogate ("\ud800") is text that JSON can hold, as an escape, but UTF-8 cannot.
_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(doc: Document) -> str:
    """The file text of a document: 2-space-indented JSON and a final newline. Non-ASCII text is
    written as itself, readable; only lone surrogates are written as \\uXXXX escapes, so that
    anything that loaded can be saved as UTF-8 and loads back the same."""
    data = doc.to_dict()
    if hasattr(doc, "_saved_text") and data == getattr(doc, "_saved_dict", None):
        # Unchanged, or edited and undone back to what the file says: the file's own bytes, so
        # that saving rewrites nothing and version control sees no change. Compared by content,
        # not by revision, so that a script changing doc.training in place is still saved.
        return doc._saved_text
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    # A surrogate can only stand inside a JSON string, where its escape means the same.
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def save(doc: Document, path) -> None:
    """Write a document atomically: a crash at any point leaves the old file or the new one.
    Saved into another folder, its relative data path is rewritten to name the same file
    (training_section.moved); if the write fails, the document is left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    training = moved(doc.training, doc.folder, folder)
    before, doc.training = doc.training, training  # written as it reads from the new folder
    try:
        text = dumps(doc)
        atomic_write(Path(path), text.encode("utf-8"))
    finally:
        doc.training = before
    doc.path = str(path)
    doc.folder = folder
    doc.set_training(training)  # nothing when the path stayed; else the views hear of it
    doc._saved_text = text
    doc._saved_dict = doc.to_dict()
