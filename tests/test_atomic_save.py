"""Saving keeps what the user set on a file, and anything that loaded can be saved (engine.md,
"Saving").

- A symbolic link stays a link; the file it points to gets the new content.
- The mode, owner and group of the file are kept; a new file gets 0666 less the umask.
- A file without write permission is refused, even for root, and left as it was.
- A file with other hard links gets its own inode: the saved name holds the new content, the
  other names keep the old one (atomicity wins over the link; nothing is lost).
- Every OSError is a SaveError (a GraphError and an OSError) that names the file and says what
  happened in words; the old file stays whole and no temporary file is left.
- Temporary files are `.NAME.wgtmp-PID-RANDOM`; a successful save removes its target's stale ones
  (dead process, or over an hour old) and leaves a live save's alone.
- Text holding a lone surrogate saves as a \\uXXXX escape and loads back the same.
- A process killed mid-save leaves the old or the new file, both for documents and weights.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from wiregrad.core import atomic
from wiregrad.core.fileio import SaveError, atomic_write, dumps, loads

from wiregrad import core

is_root = hasattr(os, "geteuid") and os.geteuid() == 0
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes, links and owners")


def doc_dict(name: str = "tiny", label: str | None = None) -> dict:
    fc = {"id": "fc", "type": "Linear", "params": {"out_features": 4}}
    if label is not None:
        fc["label"] = label
    return {"format": "wiregrad.graph", "version": 2, "name": name,
            "graph": {"nodes": [{"id": "x", "type": "Input", "params": {"shape": [2]}}, fc,
                                {"id": "out", "type": "Output"}],
                      "edges": [{"from": "x.y", "to": "fc.x"}, {"from": "fc.y", "to": "out.x"}]}}


def a_document(name: str = "tiny") -> core.Document:
    return loads(json.dumps(doc_dict(name)))


def names_in(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


def dead_pid() -> int:
    """The id of a process that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- what the user set on the file ------------------------------------------------------------


@posix_only
def test_a_symlink_stays_a_link_and_its_target_gets_the_new_content(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.wg.json"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "model.wg.json"
    link.symlink_to(Path("real") / "model.wg.json")

    core.save(a_document(), link)

    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "model.wg.json")
    assert core.load(target).name == "tiny"
    assert names_in(tmp_path) == ["model.wg.json", "real"]
    assert names_in(tmp_path / "real") == ["model.wg.json"]


@posix_only
def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    link = tmp_path / "model.wg.json"
    link.symlink_to("elsewhere.wg.json")
    atomic_write(link, b"new")
    assert link.is_symlink() and (tmp_path / "elsewhere.wg.json").read_bytes() == b"new"


@posix_only
def test_a_symlink_loop_is_a_save_error_saying_so(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(SaveError, match="loop of symbolic links"):
        atomic_write(tmp_path / "a", b"new")


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604, 0o755])
def test_the_mode_of_the_file_is_kept(tmp_path, mode):
    path = tmp_path / "private.wg.json"
    path.write_text("old", encoding="utf-8")
    path.chmod(mode)
    core.save(a_document(), path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert core.load(path).name == "tiny"


@posix_only
def test_a_private_files_new_content_is_never_readable_by_others_even_while_written(
        tmp_path, monkeypatch):
    path = tmp_path / "private.wg.json"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o600)
    modes = []
    real_write = os.write

    def spy(fd, data):
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    atomic_write(path, b"secret")
    assert modes and all(mode & 0o077 == 0 for mode in modes)


@posix_only
def test_a_new_file_gets_0666_less_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.wg.json", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.wg.json").stat().st_mode) == 0o640


@posix_only
@pytest.mark.skipif(not is_root, reason="only root can give a file to another user")
def test_the_owner_and_group_of_the_file_are_kept(tmp_path):
    path = tmp_path / "theirs.wg.json"
    path.write_text("old", encoding="utf-8")
    os.chown(path, 12345, 23456)
    core.save(a_document(), path)
    assert (path.stat().st_uid, path.stat().st_gid) == (12345, 23456)
    assert core.load(path).name == "tiny"


@posix_only
@pytest.mark.parametrize("mode", [0o444, 0o400, 0o000])
def test_a_file_without_write_permission_is_refused_even_for_root_and_left_as_it_was(
        tmp_path, mode):
    path = tmp_path / "locked.wg.json"
    path.write_text("old", encoding="utf-8")
    path.chmod(mode)
    doc = a_document()
    with pytest.raises(SaveError) as info:
        core.save(doc, path)
    error = info.value
    assert str(path) in str(error) and "read-only" in str(error)
    assert "chmod" in str(error)  # and what to do
    assert error.errno == errno.EACCES
    assert isinstance(error, core.GraphError) and isinstance(error, OSError)
    path.chmod(0o600)
    assert path.read_text(encoding="utf-8") == "old"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert names_in(tmp_path) == ["locked.wg.json"]
    assert doc.path is None  # the document was not saved: it stays modified


@posix_only
@pytest.mark.skipif(not is_root, reason="as another user, the bits of the owner class decide")
def test_root_may_save_a_file_that_someone_may_write(tmp_path):
    path = tmp_path / "group.wg.json"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o464)  # the owner may not, the group may: not a file made read-only
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o464


@posix_only
def test_a_hard_linked_file_gets_its_own_inode_and_the_other_name_keeps_the_old_content(
        tmp_path):
    path, other = tmp_path / "model.wg.json", tmp_path / "copy.wg.json"
    path.write_text("old", encoding="utf-8")
    os.link(path, other)

    atomic_write(path, b"new")

    assert path.read_bytes() == b"new"
    assert other.read_text(encoding="utf-8") == "old"  # the previous version, not lost
    assert path.stat().st_nlink == 1 and other.stat().st_nlink == 1
    assert names_in(tmp_path) == ["copy.wg.json", "model.wg.json"]


@posix_only
def test_a_pipe_is_written_to_directly_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    atomic_write(fifo, b"through the pipe")
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_folder_is_refused_naming_it(tmp_path):
    (tmp_path / "dir.wg.json").mkdir()
    with pytest.raises(SaveError, match="is a folder") as info:
        atomic_write(tmp_path / "dir.wg.json", b"x")
    assert str(tmp_path / "dir.wg.json") in str(info.value)


# -- errors in words --------------------------------------------------------------------------


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "disk is full"), (errno.EDQUOT, "disk is full"),
    (errno.EIO, "input/output error"), (errno.EFBIG, "too large"),
])
def test_a_failed_write_is_a_save_error_in_words_leaving_the_old_file_and_no_temp(
        tmp_path, monkeypatch, code, words):
    path = tmp_path / "model.wg.json"
    path.write_text("old", encoding="utf-8")

    def fail(fd, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", fail)
    with pytest.raises(SaveError) as info:
        core.save(a_document(), path)
    monkeypatch.undo()
    assert str(path) in str(info.value) and words in str(info.value)
    assert info.value.errno == code and info.value.filename == str(path)
    assert path.read_text(encoding="utf-8") == "old"
    assert names_in(tmp_path) == ["model.wg.json"]


@pytest.mark.parametrize("code, words", [
    (errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied"),
    (errno.EPERM, "permission denied"), (errno.ENAMETOOLONG, "name is too long"),
])
def test_a_temp_file_that_cannot_be_made_is_a_save_error_in_words(tmp_path, monkeypatch,
                                                                   code, words):
    real_open = os.open

    def refuse_temps(file, flags, *args, **kwargs):
        if atomic.TEMP_MARK in os.fspath(file):
            raise OSError(code, os.strerror(code), os.fspath(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_temps)
    with pytest.raises(SaveError, match=words) as info:
        atomic_write(tmp_path / "a.wg.json", b"x")
    assert str(tmp_path / "a.wg.json") in str(info.value)
    assert atomic.TEMP_MARK not in str(info.value)  # the user's file, not our temporary one


def test_saving_into_a_folder_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(SaveError, match="does not exist") as info:
        core.save(a_document(), tmp_path / "missing" / "a.wg.json")
    assert info.value.errno == errno.ENOENT
    assert str(tmp_path / "missing") in str(info.value)


def test_the_cli_shows_a_save_error_as_one_line(tmp_path, capsys):
    from wiregrad.core.cli import main as cli_main

    path = tmp_path / "out.py"
    path.write_text("# old", encoding="utf-8")
    path.chmod(0o444)
    doc = tmp_path / "a.wg.json"
    doc.write_text(json.dumps(doc_dict()), encoding="utf-8")
    assert cli_main(["export", str(doc), "--target", "numpy", "-o", str(path)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err
    assert str(path) in err and "read-only" in err
    assert path.read_text(encoding="utf-8") == "# old"


# -- temporary files --------------------------------------------------------------------------


def test_a_save_removes_its_targets_stale_temp_files_and_nothing_else(tmp_path):
    path = tmp_path / "model.wg.json"
    prefix = atomic.temp_prefix(path)
    hour_ago = time.time() - 2 * atomic.STALE_AFTER_S
    stale = {
        "dead": f"{prefix}{dead_pid()}-0badc0de",
        "old_but_live": f"{prefix}{os.getpid()}-00c0ffee",
        "old_style": ".model.wg.json.1a2b3c4d.tmp",
    }
    kept = {
        "live": f"{prefix}{os.getpid()}-12345678",  # another save, still being made
        "recent_old_style": ".model.wg.json.9a9b9c9d.tmp",  # no pid: too young to judge
        "other_target": f"{atomic.temp_prefix(tmp_path / 'other.wg.json')}{dead_pid()}-0badc0de",
        "not_our_pattern": f"{prefix}{dead_pid()}-notahexx",
        "users_file": "model.wg.json.wgtmp-1-00000000",
    }
    for name in [*stale.values(), *kept.values()]:
        (tmp_path / name).write_bytes(b"half a file")
    for key in ("old_but_live", "old_style"):
        os.utime(tmp_path / stale[key], (hour_ago, hour_ago))

    core.save(a_document(), path)

    assert names_in(tmp_path) == sorted(["model.wg.json", *kept.values()])


def test_a_failed_save_removes_no_one_elses_files(tmp_path, monkeypatch):
    path = tmp_path / "model.wg.json"
    leftover = tmp_path / f"{atomic.temp_prefix(path)}{dead_pid()}-0badc0de"
    leftover.write_bytes(b"x")

    def fail(fd):
        raise OSError(errno.EIO, "EIO")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(SaveError):
        atomic_write(path, b"new")
    assert names_in(tmp_path) == [leftover.name]  # cleaning up only follows a good save


def test_a_long_file_name_still_gets_a_temp_file_the_system_accepts(tmp_path):
    # 247 bytes: the temporary file's name is cut short, here within the bytes of an "é"
    path = tmp_path / ("a" + "é" * 119 + ".wg.json")
    atomic_write(path, b"x")
    assert names_in(tmp_path) == [path.name]


# -- anything loadable is saveable ------------------------------------------------------------


LONE = "\ud800"


@pytest.mark.parametrize("where", ["label", "name", "param", "ui", "low"])
def test_text_with_a_lone_surrogate_saves_and_loads_back_the_same(tmp_path, where):
    data = doc_dict()
    if where == "label":
        data["graph"]["nodes"][1]["label"] = f"a{LONE}b é"
    elif where == "name":
        data["name"] = f"{LONE} é ✓"
    elif where == "param":  # a bad value, left to the compiler: it still loads, so it saves
        data["graph"]["nodes"].append(
            {"id": "loss", "type": "BCELoss", "params": {"reduction": LONE}})
    elif where == "ui":
        data["ui"] = {"notes": [LONE, {LONE: "\udfff"}]}
    else:
        data["name"] = "\udc80 tail"
    doc = loads(json.dumps(data))  # loads as json reads the escape "\ud800"
    doc.move_node((), "fc", (1, 2))  # an edit, so that the text is written afresh
    path = tmp_path / "odd.wg.json"

    core.save(doc, path)

    raw = path.read_bytes()
    text = raw.decode("utf-8")  # valid UTF-8, which a raw surrogate is not
    assert "\\ud" in text or "\\udc80" in text
    if where in ("label", "name"):
        assert "é" in text  # the rest is still readable, not escaped
    again = core.load(path)
    assert again.to_dict() == doc.to_dict()
    core.save(again, path)  # and saved unchanged, byte for byte
    assert path.read_bytes() == raw


def test_a_surrogate_is_escaped_only_where_it_stands_and_other_text_stays_readable():
    doc = loads(json.dumps(doc_dict(name=f"x{LONE}y ✓", label="✓")))
    doc.set_name(doc.name + "!")
    text = dumps(doc)
    assert '"name": "x\\ud800y ✓!"' in text and '"label": "✓"' in text


# -- kills ------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill bench forks")
def test_kills_mid_save_leave_the_old_or_the_new_file_and_the_next_save_cleans_up(tmp_path):
    from bench import crash_save

    counts = crash_save.run(kills=5, folder=tmp_path, seed=1)
    assert counts["kills"] == 5
    assert counts["documents"] == 5 and counts["weights"] == 5
    assert counts["stale_after_save"] == 0
