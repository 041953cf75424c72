"""What changed between two documents, in a few words: how a forked run is labelled.

`describe_change(parent, child)` compares two documents' `to_dict()`s: nodes by id (added,
removed, type or parameters changed), wires (added or removed, counted), loop and branch bodies
and block definitions the same way under their path, and the training section by its dotted
keys. "hidden1.out_features 32 -> 64; lr 0.01 -> 0.003". Positions, labels and the UI state are
not experiments and are left out, and so is "epochs" (training longer is not a different run).
No Qt here.
"""

from __future__ import annotations

from .history import SHORT_NAMES, flatten

BODY_KEYS = ("body", "then", "else")
IGNORED_TRAINING = {"epochs"}
MAX_PARTS = 4


def describe_change(before: dict | None, after: dict | None) -> str:
    """"a -> b" for each difference, at most MAX_PARTS of them (then "and N more")."""
    before, after = before or {}, after or {}
    parts = _graph_changes(before.get("graph") or {}, after.get("graph") or {}, "")
    blocks_before, blocks_after = before.get("blocks") or {}, after.get("blocks") or {}
    for name in sorted(set(blocks_before) | set(blocks_after)):
        if name not in blocks_after:
            parts.append(f"block {name} removed")
        elif name not in blocks_before:
            parts.append(f"block {name} added")
        else:
            parts += _graph_changes(blocks_before[name], blocks_after[name], f"{name}:")
    parts += _training_changes(before.get("training"), after.get("training"))
    if len(parts) > MAX_PARTS:
        parts = parts[:MAX_PARTS] + [f"and {len(parts) - MAX_PARTS} more"]
    return "; ".join(parts)


def _graph_changes(before: dict, after: dict, prefix: str) -> list:
    old = {n["id"]: n for n in before.get("nodes", [])}
    new = {n["id"]: n for n in after.get("nodes", [])}
    parts = []
    for node_id, node in new.items():
        name = f"{prefix}{node_id}"
        if node_id not in old:
            parts.append(f"+{name} ({node['type']})")
            continue
        was = old[node_id]
        if was["type"] != node["type"]:
            parts.append(f"{name} {was['type']} -> {node['type']}")
            continue
        was_params, params = was.get("params") or {}, node.get("params") or {}
        for key in [*params, *(k for k in was_params if k not in params)]:
            if was_params.get(key) != params.get(key):
                parts.append(f"{name}.{key} {_value(was_params.get(key))} -> "
                             f"{_value(params.get(key))}")
        for key in BODY_KEYS:
            if key in node or key in was:
                parts += _graph_changes(was.get(key) or {}, node.get(key) or {}, f"{name}/")
    parts += [f"-{prefix}{node_id}" for node_id in old if node_id not in new]
    wires = _wire_changes(before.get("edges", []), after.get("edges", []))
    if wires:
        parts.append(f"{prefix}{wires}" if prefix else wires)
    return parts


def _wire_changes(before: list, after: list) -> str:
    old = {(e["from"], e["to"]) for e in before}
    new = {(e["from"], e["to"]) for e in after}
    added, removed = len(new - old), len(old - new)
    if not added and not removed:
        return ""
    if added == 1 and not removed:
        (src, dst), = new - old
        return f"wire {src} -> {dst} added"
    if removed == 1 and not added:
        (src, dst), = old - new
        return f"wire {src} -> {dst} removed"
    return f"rewired (+{added}/-{removed} wires)"


def _training_changes(before, after) -> list:
    old, new = flatten(before or {}), flatten(after or {})
    parts = []
    for key in [*new, *(k for k in old if k not in new)]:
        if key in IGNORED_TRAINING or old.get(key) == new.get(key):
            continue
        short = SHORT_NAMES.get(key, key)
        parts.append(f"{short} {_value(old.get(key))} -> {_value(new.get(key))}")
    return parts


def _value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        text = str(value)
        return text if len(text) <= 24 else text[:21] + "…"
    return str(value)
