"""Which Outputs a set of feeds allows: inference without targets (interfaces.md, format
version 2).

Every Output needs the top-level Inputs it depends on, and nothing else: `needs[output]` lists
them in document order. Given the ids of the feeds at hand, the Outputs that can be computed
are those whose Inputs are all fed (`allowed`), so `{"x": xb}` alone gives the predictions and
leaves out the loss that needs `label`.

What the three consumers make of it:

- `Program.run` (core/program.py) asks `allowed` once per distinct set of feed ids and keeps
  the function written for that set of Outputs;
- the numpy export writes one function per set of Outputs some feeds allow (`output_sets`) and
  picks it by the feeds a call is given;
- the torch export writes one `forward` whose nodes run under a test that their Inputs are
  there (`guards`).

A *target* is an Input that only single-number Outputs (losses) or a training metric need,
like a classifier's `label`: positional arguments of the torch model take the others first
(`input_order`).
"""

from __future__ import annotations

import itertools

from .layout import Layout, Site

MAX_OUTPUT_SETS = 16  # numpy export: functions written for partial feeds, at most


def output_needs(layout: Layout) -> dict:
    """Output id -> the top-level Input ids it depends on, in document order."""
    top = layout.top
    inputs = [n.id for n in top.inputs()]
    needs = {}
    for output in top.outputs():
        reached = layout.ancestors(top, [output.id])
        needs[output.id] = tuple(i for i in inputs if i in reached)
    return needs


def allowed(needs: dict, fed) -> tuple:
    """The Outputs whose Inputs are all in `fed`, in document order."""
    return tuple(o for o, inputs in needs.items() if all(i in fed for i in inputs))


def single_number(layout: Layout, output_id: str) -> bool:
    """An Output that holds one number, whatever the batch (a loss)."""
    shape = layout.output_types[output_id].shape
    count = 1
    for d in shape:
        if d is None:
            return False
        count *= d
    return count == 1


def target_inputs(layout: Layout, needs: dict | None = None) -> set:
    """Inputs that only single-number Outputs need, and the targets of the training section's
    metrics (a classifier's labels); Inputs that no Output needs are left out."""
    needs = output_needs(layout) if needs is None else needs
    predictions = {i for o, inputs in needs.items() if not single_number(layout, o)
                   for i in inputs}
    used = {i for inputs in needs.values() for i in inputs}
    targets = used - predictions
    training = layout.doc.training
    metrics = training.get("metrics") if isinstance(training, dict) else None
    for metric in metrics if isinstance(metrics, list) else ():
        target = metric.get("target") if isinstance(metric, dict) else None
        if isinstance(target, str) and target in used:
            targets.add(target)
    return targets


def input_order(layout: Layout, needs: dict | None = None) -> list:
    """The top-level Inputs in the order positional arguments take them: document order, the
    Inputs predictions need first, then the targets, then any Input no Output needs."""
    needs = output_needs(layout) if needs is None else needs
    targets = target_inputs(layout, needs)
    used = {i for inputs in needs.values() for i in inputs}
    ids = [n.id for n in layout.top.inputs()]
    first = [i for i in ids if i in used and i not in targets]
    return first + [i for i in ids if i in targets] + [i for i in ids if i not in used]


def output_sets(needs: dict, limit: int = MAX_OUTPUT_SETS) -> list:
    """The distinct sets of Outputs that some feeds allow, largest first; for any feeds, the
    first set whose Inputs are all fed is exactly what `allowed` gives. Past `limit` sets (many
    Outputs on different Inputs), the single Outputs' sets and all of them: a call may then get
    fewer Outputs than its feeds allow, never one they do not."""
    full = tuple(needs)
    found = {full, allowed(needs, ())}
    frontier = [frozenset()]
    seen = {frozenset()}
    # Every reachable set is allowed(union of some Outputs' Inputs): grow unions one at a time.
    while frontier:
        if len(found) > limit or len(seen) > 64 * limit:
            found = {full} | {allowed(needs, set(inputs)) for inputs in needs.values()}
            break
        fed = frontier.pop()
        for inputs in needs.values():
            union = fed | set(inputs)
            if union not in seen:
                seen.add(union)
                frontier.append(union)
                found.add(allowed(needs, union))
    found.discard(())
    return sorted(found, key=lambda s: (-len(s), [list(needs).index(o) for o in s]))


def set_inputs(needs: dict, outputs) -> tuple:
    """The Inputs a set of Outputs needs together, in document order of first need."""
    return tuple(dict.fromkeys(i for o in outputs for i in needs[o]))


def guards(layout: Layout, needs: dict, site: Site | None = None) -> dict:
    """Node id -> the Inputs that must be fed for the node to run: those that every Output
    needing the node needs (so a node that only the loss needs waits for the target). Nodes no
    Output needs are left out. A node's guard holds whenever the guard of a node it reads
    does, since every Output needing it needs that node too."""
    site = layout.top if site is None else site
    reach = {o: layout.ancestors(site, [o]) for o in needs}
    out = {}
    for node in site.order:
        common = None
        for o, reached in reach.items():
            if node.id in reached:
                common = set(needs[o]) if common is None else common & set(needs[o])
        if common is not None:
            out[node.id] = frozenset(common)
    return out


def nested(guard_sets) -> list | None:
    """The distinct guards smallest first when each holds the one before it (then they can be
    written as nested `if`s); else None."""
    chain = sorted(set(guard_sets), key=len)
    for a, b in itertools.pairwise(chain):
        if not a <= b:
            return None
    return chain


__all__ = ["MAX_OUTPUT_SETS", "allowed", "guards", "input_order", "nested", "output_needs",
           "output_sets", "set_inputs", "single_number", "target_inputs"]
