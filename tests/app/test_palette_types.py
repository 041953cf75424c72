"""Every type in the palette: found by category, filter and one line of help, and dropped onto
the canvas with parameters that check out."""

from wiregrad.app import doc_ops
from wiregrad.app.palette import CATEGORY_ORDER
from wiregrad.core.document import Document, Graph

from wiregrad import nodes


def test_every_type_dropped_from_the_palette_starts_with_valid_parameters():
    doc = Document(Graph(), "palette")
    for name, node_type in sorted(nodes.all_types().items()):
        if name == "Block":
            continue  # needs a block definition to call
        node = doc_ops.new_node(doc, (), name, (0, 0))
        node_type.resolve_params(node.params)  # raises ParamError if a value is missing or bad


def test_every_type_has_one_line_of_help_and_a_known_category():
    for name, node_type in nodes.all_types().items():
        assert node_type.help and "\n" not in node_type.help, name
        assert node_type.category in CATEGORY_ORDER, f"{name}: {node_type.category}"
