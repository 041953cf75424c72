"""What `wiregrad check`, `train` and `export` say when the user's files, disk, memory or pipe
fail them.

Each failure from outside Wiregrad is one line on stderr saying what it is (disk full,
permission denied, too large for memory, not a valid archive, nested too deeply, truncated),
with the path, and exit status 1: never a traceback, never "internal error", which is kept for
our own bugs. A reader that stops reading (`check F | head -1`) ends the command quietly. No
message quotes a file's contents, and text from a document reaches the terminal with its
control characters escaped.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.cli import main
from wiregrad.core.terminal import printable

from tests.test_trainer import spiral_doc
from wiregrad import core

ROOT = Path(__file__).parent.parent
COMMANDS = {"check": [], "train": ["--epochs", "1"], "export": ["--target", "numpy"]}
SECRET = "TOPSECRET-4d2f"


def run(capsys, command, path, *extra, tmp_path=None) -> tuple:
    """`wiregrad COMMAND PATH` in this process: (exit code, stdout, stderr). Anything it
    writes goes under tmp_path."""
    args = [command, str(path), *COMMANDS[command], *extra]
    if tmp_path is not None and command == "train":
        args += ["--out", str(tmp_path / "run")]
    if tmp_path is not None and command == "export":
        args += ["-o", str(tmp_path / "out.py")]
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, err, *wanted):
    """Exit 1, and the error is one line, last on stderr (train's progress lines may come
    first), saying each of `wanted`."""
    assert code == 1, err
    lines = err.splitlines()
    assert [line for line in lines if line.startswith("error")] == lines[-1:], err
    assert lines[-1].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    for text in wanted:
        assert str(text) in lines[-1], err


def saved(tmp_path, doc=None, name="net.wg.json") -> Path:
    path = tmp_path / name
    core.save(doc if doc is not None else spiral_doc(epochs=1), path)
    return path


def raising(error):
    def fail(*args, **kwargs):
        raise error
    return fail


# -- failures from outside Wiregrad: said as what they are ------------------------------------

OUTSIDE = [
    (MemoryError(), ["too large for memory while {doing} {file}"]),
    (zipfile.BadZipFile("File is not a zip file"), ["not a valid archive"]),
    (OSError(errno.ENOSPC, "No space left on device", "/data/run/weights.npz"),
     ["/data/run/weights.npz: disk is full"]),
    (OSError(errno.ENOSPC, "No space left on device"), ["disk is full", "while {doing} {file}"]),
    (OSError(errno.EDQUOT, "Disk quota exceeded", "/data/w.npz"), ["/data/w.npz: disk quota"]),
    (PermissionError(errno.EACCES, "Permission denied", "/data/w.npz"),
     ["/data/w.npz: permission denied"]),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/w.npz"),
     ["/mnt/w.npz: the file system is read-only"]),
    (RecursionError("maximum recursion depth exceeded"), ["{file}: nested too deeply"]),
]
DOING = {"check": "checking", "train": "training", "export": "exporting"}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("error, wanted", OUTSIDE, ids=lambda v: type(v).__name__
                         if isinstance(v, BaseException) else "")
def test_failures_from_outside_are_said_as_what_they_are(capsys, monkeypatch, tmp_path,
                                                         command, error, wanted):
    path = saved(tmp_path)
    for module in (core.fileio, core.train_cli, core.export_cli):
        monkeypatch.setattr(module, "load", raising(error))
    code, _, err = run(capsys, command, path, tmp_path=tmp_path)
    assert_one_line(code, err, *(w.format(doing=DOING[command], file=path) for w in wanted))


def test_our_own_bugs_are_still_internal_errors(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(core.fileio, "load", raising(KeyError("oops")))
    code, _, err = run(capsys, "check", saved(tmp_path))
    assert code == 1 and err.startswith("internal error: KeyError") and "--debug" in err


def test_ctrl_c_is_interrupted(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(core.fileio, "load", raising(KeyboardInterrupt()))
    code, _, err = run(capsys, "check", saved(tmp_path))
    assert (code, err) == (130, "interrupted\n")


# -- the user's files, for real -------------------------------------------------------------------


def bad_documents(tmp_path) -> dict:
    text = saved(tmp_path, name="whole.wg.json").read_text(encoding="utf-8")
    (tmp_path / "empty.wg.json").write_bytes(b"")
    (tmp_path / "cut.wg.json").write_text(text[: len(text) // 2], encoding="utf-8")
    (tmp_path / "folder.wg.json").mkdir()
    return {"empty": tmp_path / "empty.wg.json", "truncated": tmp_path / "cut.wg.json",
            "folder": tmp_path / "folder.wg.json"}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", ["empty", "truncated", "folder"])
def test_a_broken_document_is_one_line_naming_it(capsys, tmp_path, command, case):
    path = bad_documents(tmp_path)[case]
    code, _, err = run(capsys, command, path, tmp_path=tmp_path)
    assert_one_line(code, err, path)
    assert not (tmp_path / "run").exists() and not (tmp_path / "out.py").exists()


def npz_document(tmp_path, dataset_bytes: bytes | None) -> Path:
    """A document training on `data.npz` beside it (absent when dataset_bytes is None)."""
    doc = spiral_doc(epochs=1)
    doc.training["dataset"] = {"kind": "npz", "path": "data.npz"}
    if dataset_bytes is not None:
        (tmp_path / "data.npz").write_bytes(dataset_bytes)
    return saved(tmp_path, doc)


def test_train_names_a_missing_dataset_file(capsys, tmp_path):
    code, _, err = run(capsys, "train", npz_document(tmp_path, None), tmp_path=tmp_path)
    assert_one_line(code, err, "dataset file 'data.npz' not found")


def test_train_names_a_truncated_dataset_archive(capsys, tmp_path):
    data = core.npz.npz_bytes({"x": np.zeros((300, 2)), "y": np.zeros(300, np.int64)})
    code, _, err = run(capsys, "train", npz_document(tmp_path, data[: len(data) // 2]),
                       tmp_path=tmp_path)
    assert_one_line(code, err, "data.npz: truncated")


def test_check_and_export_do_not_read_the_dataset(capsys, tmp_path):
    path = npz_document(tmp_path, b"")
    assert run(capsys, "check", path)[0] == 0
    assert run(capsys, "export", path, tmp_path=tmp_path)[0] == 0


def full_disk(monkeypatch, filename):
    """Every atomic write fails as on a full disk (with the path the system names, if any)."""
    error = OSError(errno.ENOSPC, "No space left on device", *([filename] if filename else []))
    for module in (core.fileio, core.train_cli, core.export_cli, core.npz):
        if hasattr(module, "atomic_write"):
            monkeypatch.setattr(module, "atomic_write", raising(error))


@pytest.mark.parametrize("command", ["train", "export"])
@pytest.mark.parametrize("named", [True, False])
def test_a_full_disk_while_writing_is_said_so(capsys, monkeypatch, tmp_path, command, named):
    path = saved(tmp_path)
    target = tmp_path / "somewhere.tmp"
    full_disk(monkeypatch, str(target) if named else None)
    code, _, err = run(capsys, command, path, tmp_path=tmp_path)
    assert_one_line(code, err, "disk is full", target if named else path)


def test_a_full_disk_making_the_run_folder_is_said_so(capsys, monkeypatch, tmp_path):
    path = saved(tmp_path)
    monkeypatch.setattr(Path, "mkdir", raising(
        OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run"))))
    code, _, err = run(capsys, "train", path, tmp_path=tmp_path)
    assert_one_line(code, err, f"{tmp_path / 'run'}: disk is full")


def test_export_weights_that_are_not_an_archive(capsys, tmp_path):
    weights = tmp_path / "w.npz"
    weights.write_text(f"{SECRET}\n")
    code, _, err = run(capsys, "export", ROOT / "assets/examples/spiral-mlp.wg.json",
                       "--weights", str(weights), tmp_path=tmp_path)
    assert_one_line(code, err, f"--weights {weights}: not a valid .npz archive")
    assert SECRET not in err


# -- nothing of a file's contents in a message ------------------------------------------------------


@pytest.mark.parametrize("columns", [
    None,  # the array names come from the file's first line: they are counted, never listed
    {"x": ["a", "b"], "y": "c"},
])
def test_train_never_prints_a_private_file_a_dataset_points_at(capsys, tmp_path, columns):
    private = tmp_path / "private.txt"
    private.write_text(f"{SECRET} {SECRET}\nsecond line {SECRET}\n", encoding="utf-8")
    doc = spiral_doc(epochs=1)
    doc.training["dataset"] = {"kind": "csv", "path": "private.txt"}
    if columns:
        doc.training["dataset"]["columns"] = columns
    code, out, err = run(capsys, "train", saved(tmp_path, doc), tmp_path=tmp_path)
    assert_one_line(code, err, "private.txt")
    assert SECRET not in out + err


def test_check_never_prints_a_private_file_given_as_the_document(capsys, tmp_path):
    private = tmp_path / "private.txt"
    private.write_text(f"{SECRET}\n", encoding="utf-8")
    code, out, err = run(capsys, "check", private)
    assert_one_line(code, err, private)
    assert SECRET not in out + err


# -- control characters from documents are escaped -------------------------------------------------


def test_printable_escapes_control_characters_and_keeps_the_rest():
    assert printable("plain ünïcødé → text") == "plain ünïcødé → text"
    assert printable("red\x1b[31m\r\n\t\x00\x7f\x9b") == r"red\x1b[31m\r\n\t\x00\x7f\x9b"
    assert printable("a\u202eb\ud800") == r"a\u202eb\ud800"
    assert printable(3) == "3"


def test_check_escapes_a_documents_name_and_never_fails_to_print(capsys, tmp_path):
    doc = spiral_doc(epochs=1)
    doc.name = "evil\x1b[31m\x1b]0;title\x07 \ud800 name"
    doc.graph.nodes[0].label = "over\rwrite"
    path = tmp_path / "doc.wg.json"
    path.write_text(json.dumps(doc.to_dict()), encoding="utf-8")
    code, out, err = run(capsys, "check", path)
    assert code == 0, err
    assert "\x1b" not in out + err and "\r" not in out + err and "\x07" not in out + err
    assert r"evil\x1b[31m\x1b]0;title\x07 \ud800 name" in out


def test_paths_and_messages_are_escaped_too(capsys, tmp_path):
    path = tmp_path / "evil\x1b[2J\r.wg.json"
    code, _, err = run(capsys, "check", path)
    assert_one_line(code, err, r"evil\x1b[2J\r.wg.json")
    assert "\x1b" not in err and "\r" not in err
    code, out, err = run(capsys, "export", ROOT / "assets/examples/spiral-mlp.wg.json",
                         "-o", str(tmp_path / "m\x1b[1m.py"))
    assert code == 0 and "\x1b" not in out and r"m\x1b[1m.py" in out


# -- a pipe that closes early ------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("head") is None or shutil.which("sh") is None,
                    reason="needs a POSIX shell and head")
def test_check_piped_into_head_exits_quietly(tmp_path):
    """`wiregrad check F | head -1` on a document whose listing is far bigger than a pipe's
    buffer: head has its line, and stderr stays empty (no message, no "Exception ignored")."""
    n = 6000
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [3]}}]
    nodes += [{"id": f"t{i}", "type": "Tanh"} for i in range(n)] + [{"id": "out", "type": "Output"}]
    edges = [{"from": "x.y", "to": "t0.x"}, {"from": f"t{n - 1}.y", "to": "out.x"}]
    edges += [{"from": f"t{i}.y", "to": f"t{i + 1}.x"} for i in range(n - 1)]
    path = tmp_path / "long.wg.json"
    path.write_text(json.dumps({"format": "wiregrad.graph", "version": 2,
                                "graph": {"nodes": nodes, "edges": edges}}), encoding="utf-8")
    err = tmp_path / "stderr.txt"
    command = f'"{sys.executable}" -m wiregrad check "{path}" 2>"{err}" | head -1'
    result = subprocess.run(["sh", "-c", command], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.stdout == f"{path}\n"
    assert err.read_text() == ""
