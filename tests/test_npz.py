"""wiregrad.core.npz: the one reader and writer of `.npz` archives (weights and datasets).

What numpy saves comes back as it was, under any name. A file that is missing, a folder,
empty, cut short, not a zip, a zip of something else, full of pickled objects, or one whose
header declares more than it holds or than memory allows is a GraphError naming the path and
saying what is wrong, never anything else, never the file's bytes, and refused before anything
large is allocated: a file declaring 2*10^8 rows is answered at once. Writing never pickles.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.errors import GraphError
from wiregrad.core.export import export_source
from wiregrad.core.npz import load_array, load_arrays, npz_bytes, save_arrays

from tests.export_check import load_module
from wiregrad import core

SECRET = "TOPSECRET-4d2f"
SPIRAL = Path(__file__).parent.parent / "assets" / "examples" / "spiral-mlp.wg.json"


def npy_bytes(array: np.ndarray, shape=None) -> bytes:
    """An array's .npy bytes; with `shape`, a header that declares that shape instead."""
    header = np.lib.format.header_data_from_array_1_0(array)
    if shape is not None:
        header["shape"] = shape
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    out.write(array.tobytes())
    return out.getvalue()


def archive(path, members: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def refusal(path) -> str:
    """The message load_arrays refuses `path` with (it must refuse with a GraphError)."""
    with pytest.raises(GraphError) as info:
        load_arrays(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and SECRET not in message
    return message


# -- what is written comes back ----------------------------------------------------------------


def test_arrays_round_trip_with_their_names_dtypes_and_shapes(tmp_path):
    arrays = {"fc.weight": np.arange(6.0).reshape(2, 3), "fc.bias": np.zeros(3, np.float32),
              "ids": np.array([1, 2], np.int64), "file": np.ones(1), "names": np.array(["a"])}
    save_arrays(tmp_path / "w.npz", arrays)
    loaded = load_arrays(tmp_path / "w.npz")
    assert list(loaded) == list(arrays)
    for name, value in arrays.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)


def test_files_numpy_writes_load_too(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.arange(4.0), y=np.eye(2))
    np.savez_compressed(tmp_path / "b.npz", x=np.arange(4.0))
    assert set(load_arrays(tmp_path / "a.npz")) == {"x", "y"}
    np.testing.assert_array_equal(load_arrays(tmp_path / "b.npz")["x"], np.arange(4.0))


def test_what_save_writes_is_what_numpy_reads(tmp_path):
    save_arrays(tmp_path / "w.npz", {"w": np.eye(3)})
    with np.load(tmp_path / "w.npz", allow_pickle=False) as loaded:
        np.testing.assert_array_equal(loaded["w"], np.eye(3))
    assert npz_bytes({"w": np.eye(3)}) == (tmp_path / "w.npz").read_bytes()


def test_objects_are_never_saved(tmp_path):
    with pytest.raises(GraphError, match="array 'o' holds Python objects"):
        save_arrays(tmp_path / "w.npz", {"o": np.array([{}, None], dtype=object)})
    assert not (tmp_path / "w.npz").exists()


# -- every bad file is named and said in words -------------------------------------------------


def test_a_missing_file(tmp_path):
    assert refusal(tmp_path / "none.npz").endswith("none.npz: no such file")


def test_a_folder(tmp_path):
    assert "is a folder" in refusal(tmp_path)


def test_an_empty_file(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    assert "empty file" in refusal(tmp_path / "e.npz")


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.99])
def test_a_truncated_file(tmp_path, keep):
    save_arrays(tmp_path / "w.npz", {"w": np.full(1000, 7.0), "b": np.ones(10)})
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: int(len(data) * keep)])
    assert "truncated" in refusal(tmp_path / "cut.npz")


def test_random_bytes_and_text(tmp_path):
    (tmp_path / "t.npz").write_text(f"{SECRET}\nmore private text\n")
    assert "not a valid .npz archive" in refusal(tmp_path / "t.npz")
    (tmp_path / "r.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not a valid .npz archive" in refusal(tmp_path / "r.npz")


def test_a_zip_of_something_else(tmp_path):
    path = archive(tmp_path / "z.npz", {"notes.txt": SECRET})
    assert "not a valid .npz archive" in refusal(path)
    path = archive(tmp_path / "y.npz", {"x.npy": SECRET * 10})
    assert "not a valid .npz archive" in refusal(path)


@pytest.mark.parametrize("header", [b"{'descr': SECRET}", b"{'descr': '<f8', 'shape': (((",
                                    b"{" * 5000, b"\x00\xff"])
def test_a_header_numpy_cannot_parse_is_an_invalid_archive(tmp_path, header):
    # numpy parses .npy headers with tokenize and ast, which raise more than ValueError.
    text = header.ljust(118) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text
    message = refusal(archive(tmp_path / "h.npz", {"x.npy": npy}))
    assert "no valid .npy header" in message and "SECRET" not in message


def test_a_single_npy_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    assert "a single .npy array, not an .npz archive" in refusal(tmp_path / "a.npy")


def test_pickled_objects_are_refused_by_name(tmp_path):
    np.savez(tmp_path / "o.npz", fine=np.zeros(2), bad=np.array([{}, []], dtype=object))
    assert "array 'bad' holds Python objects" in refusal(tmp_path / "o.npz")


def test_a_damaged_array_inside_a_whole_archive(tmp_path):
    data = bytearray(npz_bytes({"w": np.arange(1000.0)}))
    data[400:408] = b"\xff" * 8  # inside the array's data: the CRC no longer matches
    (tmp_path / "d.npz").write_bytes(bytes(data))
    assert "array 'w'" in refusal(tmp_path / "d.npz")


def test_any_mutation_is_a_graph_error_or_loads(tmp_path):
    """A thousand random corruptions: each loads or is one GraphError, nothing else."""
    good = npz_bytes({"w": np.arange(50.0).reshape(5, 10), "b": np.zeros(3, np.float32)})
    rng = np.random.default_rng(1)
    path = tmp_path / "m.npz"
    for _ in range(1000):
        data = bytearray(good)
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(len(data))] = rng.integers(256)
        path.write_bytes(bytes(data[: rng.integers(1, len(data) + 1)]))
        try:
            load_arrays(path)
        except GraphError as error:
            assert str(path) in str(error)


# -- bombs: refused from the header, before allocating ------------------------------------------


def test_a_declared_shape_larger_than_the_file_is_refused_at_once(tmp_path):
    """200 million rows declared in a file of a few hundred bytes (issue 12, item 10)."""
    path = archive(tmp_path / "bomb.npz",
                   {"x.npy": npy_bytes(np.zeros(4), shape=(200_000_000, 2))})
    started = time.perf_counter()
    message = refusal(path)
    assert time.perf_counter() - started < 2.0
    assert "array 'x' declares shape (200000000, 2) of float64 = 3.2 GB" in message
    assert "more than the file holds" in message and "Python objects" not in message


def test_a_zip_entry_claiming_more_than_compression_can_give(tmp_path):
    path = archive(tmp_path / "z.npz", {"x.npy": npy_bytes(np.zeros(1000))},
                   zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    # Rewrite the entry's uncompressed size (central directory) to 10^12 bytes: zip64-free
    # fields hold at most 4 GB, so claim 4 GB against the ~40 bytes it compresses to.
    directory = data.rfind(b"PK\x01\x02")
    data[directory + 24:directory + 28] = (0xFFFFFFFE).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    started = time.perf_counter()
    message = refusal(path)
    assert time.perf_counter() - started < 2.0
    assert "array 'x'" in message and "damaged" in message


def test_more_than_this_machine_has_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr("wiregrad.core.npz._npz_memory_bytes", lambda: 999)
    save_arrays(tmp_path / "w.npz", {"w": np.zeros(1000)})
    assert "array 'w' needs 8.0 kB, more than this machine's memory (999 bytes)" in \
        refusal(tmp_path / "w.npz")


def test_memory_error_while_reading_is_too_large_for_memory(tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np.lib.format, "read_array", no_memory)
    save_arrays(tmp_path / "w.npz", {"w": np.zeros(10)})
    assert "array 'w' (80 bytes) is too large for memory" in refusal(tmp_path / "w.npz")


# -- single .npy files ---------------------------------------------------------------------------


def test_npy_files_are_read_with_the_same_checks(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(load_array(tmp_path / "a.npy"), np.arange(6.0).reshape(2, 3))
    (tmp_path / "bomb.npy").write_bytes(npy_bytes(np.zeros(4), shape=(10**12,)))
    with pytest.raises(GraphError, match=r"bomb.npy: the array declares shape \(1000000000000,\)"):
        load_array(tmp_path / "bomb.npy")
    np.save(tmp_path / "o.npy", np.array([{}], dtype=object), allow_pickle=True)
    with pytest.raises(GraphError, match="holds Python objects"):
        load_array(tmp_path / "o.npy")
    save_arrays(tmp_path / "w.npz", {"w": np.zeros(2)})
    with pytest.raises(GraphError, match="an .npz archive, not a single .npy array"):
        load_array(tmp_path / "w.npz")


# -- an exported script reads its .npz dataset with the same code ---------------------------------


def test_exported_scripts_copy_the_safe_reader(tmp_path):
    doc_data = json.loads(SPIRAL.read_text(encoding="utf-8"))
    doc_data["training"]["dataset"] = {"kind": "npz", "path": "d.npz"}
    (tmp_path / "doc.wg.json").write_text(json.dumps(doc_data), encoding="utf-8")
    save_arrays(tmp_path / "d.npz", {"x": np.zeros((6, 2)), "y": np.arange(6) % 3})
    text = export_source(core.load(tmp_path / "doc.wg.json"), "numpy", data_dir=str(tmp_path))
    module = load_module(text, tmp_path)
    spec = doc_data["training"]["dataset"]
    assert module.make_dataset(spec)["x"].shape == (6, 2)
    archive(tmp_path / "d.npz", {"x.npy": npy_bytes(np.zeros(4), shape=(200_000_000, 2))})
    with pytest.raises(ValueError, match="more than the file holds"):
        module.make_dataset(spec)
