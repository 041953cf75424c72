"""A problem training leaves aside (a node the loss does not depend on) is a warning, not an
error: amber on the canvas, and Problems says training ignores it."""

import os

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


def test_a_stray_node_is_badged_as_a_warning_and_a_blocker_as_an_error(window):
    assert window.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"), example=True)
    stray = window.controller.add_node("Sigmoid", (40, 400))  # nothing wired into it
    window.validator.run_now()
    item = window.scene.node_items[stray]
    assert item.error and item.warning
    rows = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert any("training ignores it" in row for row in rows)

    # a problem on the loss path stays an error
    doc = window.controller.doc
    edge = next(e for e in doc.graph.edges if e.dst == "act1")
    window.controller.disconnect(edge)
    window.validator.run_now()
    assert window.scene.node_items["act1"].error and not window.scene.node_items["act1"].warning
