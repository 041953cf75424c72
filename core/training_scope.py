"""Train what the loss needs: which problems of a document stop training, and which do not.

A node that neither the loss nor a metric depends on cannot change what training does. When
such a node has a problem (a stray Sigmoid with nothing wired into it), training leaves it out
instead of refusing to start: `trainable(doc, errors)` gives a copy of the document without the
top-level nodes that have problems off the loss path, nor what is wired from them, and says what
it left out and why. A problem on the path (the loss's or a metric's ancestors, block
definitions, problems that name no node) still stops training, naming its node. Nodes without
problems stay, on the path or not, so their weights are drawn and saved as before.

The compiler uses this for training (compiler.compile_for_training) and for the editor's badges
(`Analysis.ignored_by_training`); `wiregrad check` still reports every problem as an error of the
document, saying which ones training ignores (docs/training.md).
"""

from __future__ import annotations

from .errors import GraphError


def wanted(doc) -> set:
    """The top-level ids training reads: the loss, each metric's pred and target. Read
    leniently: a broken section is the schema's to report (training_section.problems)."""
    section = doc.training if isinstance(doc.training, dict) else {}
    names = {section.get("loss")}
    metrics = section.get("metrics") if isinstance(section.get("metrics"), list) else []
    for metric in metrics:
        if isinstance(metric, dict):
            names.update((metric.get("pred"), metric.get("target")))
    return {n for n in names if isinstance(n, str)}


def needed(doc) -> set | None:
    """The top-level node ids the loss and the metrics depend on (themselves included); None
    when the loss names no top-level Output, so nothing can be left out."""
    graph = doc.graph
    ids = {n.id for n in graph.nodes}
    loss = doc.training.get("loss") if isinstance(doc.training, dict) else None
    if not any(n.id == loss and n.type == "Output" for n in graph.nodes):
        return None
    sources: dict = {}
    for edge in graph.edges:
        sources.setdefault(edge.dst, []).append(edge.src)
    seen, stack = set(), [n for n in wanted(doc) if n in ids]
    while stack:  # iterative: a deep graph must not overflow the stack
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(sources.get(node, ()))
    return seen


def top_node(path: str | None) -> str | None:
    """The top-level node a path is inside (`rnn/cell` -> `rnn`); None for no node or a block
    definition (`@Residual/fc`), whose problems are every instance's."""
    if not path or path.startswith("@"):
        return None
    return path.split("/", 1)[0]


def ignored_paths(doc, errors: list) -> set:
    """The node paths of the errors training ignores: those off the loss and metrics' path."""
    keep = needed(doc)
    if keep is None:
        return set()
    ids = {n.id for n in doc.graph.nodes}
    return {e.node for e in errors if top_node(e.node) in ids and top_node(e.node) not in keep}


def trainable(doc, errors: list) -> tuple:
    """(the document training runs, warnings, {left-out node id: why}) for a document whose
    compilation found `errors`. Raises a GraphError of the errors that stop training, if any."""
    off = ignored_paths(doc, errors)
    blockers = [e for e in errors if e.node not in off]
    if blockers:
        raise GraphError.collect(blockers)
    reasons: dict = {}
    for error in errors:
        reasons.setdefault(top_node(error.node), _reason(error))
    left_out = _downstream(doc.graph, set(reasons))
    out = doc.copy()
    out.graph.nodes = [n for n in out.graph.nodes if n.id not in left_out]
    out.graph.edges = [e for e in out.graph.edges
                       if e.src not in left_out and e.dst not in left_out]
    warnings, why = [], {}
    for node_id, reason in reasons.items():
        after = sorted((left_out - set(reasons)) & _downstream(doc.graph, {node_id}))
        also = f", and {', '.join(after)} after it" if after else ""
        warnings.append(GraphError(f"ignored by training: {node_id} ({reason}){also}", node_id))
        why[node_id] = reason
        why.update({a: f"after {node_id}" for a in after if a not in why})
    return out, warnings, why


def _reason(error: GraphError) -> str:
    """An error's message without the node it names first (`sigmoid.x is not connected` ->
    `x is not connected`), as the warning names the node already."""
    message, node = error.message, error.node
    if node != top_node(node):
        return message  # inside a body: the path says where
    if message.startswith(f"{node}: "):
        return message[len(node) + 2:]
    if message.startswith(f"{node}."):
        return message[len(node) + 1:]
    return message


def _downstream(graph, starts: set) -> set:
    """The nodes wired from `starts`, directly or not, and `starts` themselves."""
    targets: dict = {}
    for edge in graph.edges:
        targets.setdefault(edge.src, []).append(edge.dst)
    seen, stack = set(), list(starts)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(targets.get(node, ()))
    return seen


__all__ = ["ignored_paths", "needed", "top_node", "trainable", "wanted"]
