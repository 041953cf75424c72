"""The `wiregrad` command line: open the editor, check, train, export, predict.

Every failure a user can cause (a bad file, a wrong shape, a missing dataset) is printed as one
readable message on stderr with a non-zero exit; a traceback only with `--debug`. So is every
failure from outside Wiregrad (a full disk, a missing permission, too little memory; see
failures.py): "internal error" is only for our own bugs. Text from documents and files is
printed through terminal.printable, so no name can send escape sequences to the terminal. A
reader that stops reading (`wiregrad check F | head -1`) ends the command quietly.
"""

from __future__ import annotations

import argparse
import io
import os
import sys

from .errors import GraphError
from .failures import describe
from .terminal import printable

EXIT_ERROR = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wiregrad",
        description="Build, train and export differentiable programs. With no command, opens "
                    "the editor (on FILE, or an example).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command")

    check = sub.add_parser("check", help="validate a document and print every node's shape")
    check.add_argument("file")
    check.add_argument("--dtype", default="float32", choices=("float32", "float64"))

    train = sub.add_parser("train", help="train a document by its training section")
    train.add_argument("file")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--out", default=None, help="folder for weights.npz, history.csv, loss.png")
    train.add_argument("--json", action="store_true", help="print one final JSON object")
    train.add_argument("--weights", default=None,
                       help="start from these weights (.npz, e.g. a run's weights.npz)")

    export = sub.add_parser("export", help="write the graph as a standalone Python module")
    export.add_argument("file")
    export.add_argument("--target", required=True, choices=("numpy", "torch", "onnx"))
    export.add_argument("-o", "--output", default=None,
                        help="the file to write (default: beside FILE, as NAME_numpy.py, "
                             "NAME_torch.py or NAME.onnx)")
    export.add_argument("--weights", default=None, help="trained weights (.npz) to load")

    predict = sub.add_parser("predict", help="run trained weights on new data (no targets)")
    predict.add_argument("file")
    predict.add_argument("--weights", required=True, help="trained weights (.npz)")
    predict.add_argument("--input", required=True, help="the examples: a .csv or .npz file")
    predict.add_argument("-o", "--output", default=None,
                         help="where to write the predictions, .csv or .npz (default: beside "
                              "the input, as NAME-predictions.csv or .npz)")
    # `wiregrad check FILE --debug` is how people type it; SUPPRESS keeps the top-level value
    # when the flag is not repeated after the command.
    for command in (check, train, export, predict):
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks on errors")
    return parser


# The words that make `wiregrad ...` a command rather than the editor on a file
# (wiregrad/__main__.py decides).
COMMANDS = {"check", "train", "export", "predict", "-h", "--help"}


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _never_fail_to_print()
    try:
        code = _run(args)
        sys.stdout.flush()  # a reader that went away shows here, not as noise at exit
        return code
    except GraphError as exc:
        if args.debug:
            raise
        for error in exc.errors:
            print(f"error: {printable(error)}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `wiregrad check F | head -1`: the reader has all it wants. Stop quietly, and point
        # the output at devnull so that Python's own flush at exit finds no pipe to complain
        # about (as the Python docs advise for SIGPIPE).
        _detach_output()
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = describe(exc, args.command, getattr(args, "file", ""))
        if message is not None:  # the user's file, disk, memory: said as what it is
            print(f"error: {printable(message)}", file=sys.stderr)
            return EXIT_ERROR
        # a bug of ours: still one readable line unless --debug
        print(f"internal error: {type(exc).__name__}: {printable(exc)} (run with --debug for "
              "details)", file=sys.stderr)
        return EXIT_ERROR


def _run(args) -> int:
    if args.command == "check":
        return cmd_check(args)
    if args.command == "train":
        from .train_cli import cmd_train

        return cmd_train(args)
    if args.command == "export":
        from .export_cli import cmd_export

        return cmd_export(args)
    if args.command == "predict":
        from .predict_cli import cmd_predict

        return cmd_predict(args)
    _parser().print_help()
    return EXIT_USAGE


def _never_fail_to_print() -> None:
    """Text the terminal's encoding cannot show is written as escapes, never an error."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _detach_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass  # not a real file (a test's capture): nothing will flush to a closed pipe


def cmd_check(args) -> int:
    from .compiler import analyze
    from .document import node_path
    from .fileio import load
    from .well_formed import walk_graphs

    doc = load(args.file)
    analysis = analyze(doc, args.dtype)
    title = f"{args.file}" + (f": {doc.name}" if doc.name else "")
    print(printable(title))
    rows = []
    for ref, graph, _ in walk_graphs(doc):
        if ref and ref[0].startswith("@"):
            continue  # block definitions are shown through their instances
        for node in graph.nodes:
            path = node_path(ref, node.id)
            outs = [(port, t) for (p, port), t in analysis.port_types.items() if p == path]
            if node.type == "Output":
                outs = _output_value(graph, ref, node, analysis)
            shapes = ", ".join(f"{port}: {t.label()}" for port, t in outs) or "-"
            rows.append((path, _type_text(node), shapes))
    _print_block_instances(doc, analysis, rows)
    width = max((len(r[0]) for r in rows), default=4)
    type_width = max((len(r[1]) for r in rows), default=4)
    for path, type_name, shapes in rows:
        print(printable(f"  {path:<{width}}  {type_name:<{type_width}}  {shapes}"))
    problems, warnings = _problem_lines(doc, analysis)
    if problems:
        for line in problems:
            print(f"error: {printable(line)}", file=sys.stderr)
        count = len(problems)
        print(f"{count} problem{'s' if count > 1 else ''} found", file=sys.stderr)
        return EXIT_ERROR
    for warning in warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    print("OK")
    return 0


def _problem_lines(doc, analysis) -> tuple:
    """check's (errors, warnings): the graph's errors, each saying whether training ignores it
    (training runs what the loss and metrics need, core/training_scope.py), then the training
    section's, checked against the graph and the data's names without loading the data."""
    from .training_check import check as check_training
    from .training_scope import top_node

    lines = []
    for error in analysis.errors:
        if error.node in analysis.ignored_by_training:
            lines.append(f"{error} (training ignores it: the loss and metrics do not depend "
                         f"on {top_node(error.node)})")
        else:
            lines.append(str(error))
    errors, warnings = check_training(doc, analysis)
    return lines + [str(e) for e in errors], [str(w) for w in [*analysis.warnings, *warnings]]


def _output_value(graph, ref, node, analysis) -> list:
    """An Output has no output port; what it gives is the value wired into it."""
    from .document import node_path

    edge = graph.edge_into(node.id, "x")
    t = edge and analysis.port_types.get((node_path(ref, edge.src), edge.src_port))
    return [("value", t)] if t else []


def _print_block_instances(doc, analysis, rows) -> None:
    """Nodes inside block instances (`res1/fc`) have shapes of their own; list them too."""
    known = {r[0] for r in rows}
    extra = {}
    for (path, port), t in analysis.port_types.items():
        if path not in known:
            extra.setdefault(path, []).append((port, t))
    # Each node right after the one enclosing it (`o/rnn` before `o/rnn/blk/fc`), in the order
    # the analysis met them otherwise.
    first: dict = {}
    for k, path in enumerate(extra):
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            first.setdefault("/".join(parts[:n]), k)

    def place(path: str) -> tuple:
        parts = path.split("/")
        return tuple(first["/".join(parts[:n])] for n in range(1, len(parts) + 1))

    for path in sorted(extra, key=place):
        shapes = ", ".join(f"{port}: {t.label()}" for port, t in extra[path])
        node = _node_at_path(doc, path)
        rows.append((path, _type_text(node) if node is not None else "?", shapes))


def _type_text(node) -> str:
    """A node's type, and whose tensors it uses if it shares them."""
    return node.type if node.shares is None else f"{node.type} (shares {node.shares})"


def _node_at_path(doc, path: str):
    """The node a path names (`res1/fc`, `rnn/cell`, `gate/then/fc`), through block
    instances into their definitions; None if there is none."""
    graph, node = doc.graph, None
    parts = path.split("/")
    while parts:
        if node is not None and node.type == "Branch" and parts[0] in node.bodies:
            graph = node.bodies[parts.pop(0)]
        node = graph.node(parts.pop(0))
        if node is None:
            return None
        if parts and node.type == "Block":
            graph = doc.blocks.get(node.params.get("block"))
            if graph is None:
                return None
        elif parts and node.type == "Loop":
            graph = node.bodies["body"]
    return node



if __name__ == "__main__":
    sys.exit(main())
