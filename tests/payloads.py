"""Document text that tries to become code: payloads for names, labels and block names, and a
document carrying one everywhere text goes. Used by the export and engine injection tests."""

from __future__ import annotations

from pathlib import Path

from tests.program_check import document, graph


def payloads(marker: Path) -> list:
    """Texts that would write `marker` if they ever ran as code."""
    path = str(marker).replace("\\", "/")
    call = f"open({path!r}, 'w').write('pwned')"
    return [
        f"\nimport os; {call}\n",
        f'"""\n{call}\n"""',
        f"'''\n{call}\n'''",
        f"\\\n{call}",
        f"\u2028{call}\u2029{call}\x0b{call}\x0c{call}\r{call}",
        f"# {call}\n{call} #",
        f"\"); {call}; (\"",
        f"{{{call}}}",
        f"\x00{call}\x85{call}",
    ]


def payload_document(payload: str):
    """A document whose name, labels and block name are all `payload` (ids cannot be)."""
    block = graph([("x", "Input", {}), ("fc", "Linear", {"out_features": 2}),
                   ("y", "Output", {})], [("x.y", "fc.x"), ("fc.y", "y.x")])
    block.nodes[1].label = payload
    doc = document([("x", "Input", {"shape": [3]}), ("b", "Block", {"block": payload}),
                    ("s", "Sum", {}), ("loss", "Output", {})],
                   [("x.y", "b.x"), ("b.y", "s.x"), ("s.y", "loss.x")], blocks={payload: block})
    doc.name = payload
    for node in doc.graph.nodes:
        node.label = payload
    return doc
