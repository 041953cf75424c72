"""Datasets: built-in generators, CSV/NPZ/NPY files, the train/validation split and mini-batches."""

import os
import time
import zipfile

import numpy as np
import pytest
from wiregrad.core import datasets
from wiregrad.core.datasets import Dataset, batches, load_dataset, split
from wiregrad.core.errors import DataError, GraphError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IRIS = os.path.join(ROOT, "assets", "data", "iris.csv")
IRIS_CSV_NAME = os.path.basename(IRIS)
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


# -- generators ------------------------------------------------------------------------------

GENERATOR_SHAPES = {
    # kind: {array: (shape after n, dtype)}
    "spiral": {"x": ((2,), np.float64), "y": ((), np.int64)},
    "moons": {"x": ((2,), np.float64), "y": ((), np.int64)},
    "circles": {"x": ((2,), np.float64), "y": ((), np.int64)},
    "xor": {"x": ((2,), np.float64), "y": ((), np.int64)},
    "sine": {"x": ((1,), np.float64), "y": ((1,), np.float64)},
    "seq_sum": {"seq": ((10, 1), np.float64), "target": ((1,), np.float64),
                "length": ((), np.int64)},
    "seq_parity": {"seq": ((16, 1), np.float64), "target": ((), np.int64),
                   "length": ((), np.int64)},
    "copy_first": {"seq": ((10, 4), np.float64), "target": ((), np.int64),
                   "length": ((), np.int64)},
    "expr_trees": {"tokens": ((31,), np.int64), "children": ((31, 2), np.int64),
                   "root": ((), np.int64), "target": ((), np.int64), "prefix": ((31,), np.int64),
                   "last": ((), np.int64), "length": ((), np.int64)},
    "rotations": {"x": ((2,), np.float64), "steps": ((), np.float64),
                  "target": ((2,), np.float64)},
    "pairs": {"a": ((2,), np.float64), "b": ((2,), np.float64), "same": ((), np.int64),
              "class_a": ((), np.int64), "class_b": ((), np.int64)},
    "adding": {"seq": ((50, 2), np.float64), "target": ((1,), np.float64)},
    "running_max": {"tokens": ((10,), np.int64), "target": ((10,), np.int64)},
}


def test_every_generator_is_listed_and_documented():
    assert set(datasets.GENERATORS) == set(GENERATOR_SHAPES)
    for kind, generate in datasets.GENERATORS.items():
        assert "Returns" in generate.__doc__, kind


@pytest.mark.parametrize("kind", sorted(GENERATOR_SHAPES))
def test_generator_shapes_and_dtypes(kind):
    data = load_dataset({"kind": kind, "n": 101, "seed": 3})
    assert len(data) == 101
    for name, (shape, dtype) in GENERATOR_SHAPES[kind].items():
        assert data[name].shape == (101, *shape), name
        assert data[name].dtype == dtype, name
        assert np.isfinite(data[name]).all()


@pytest.mark.parametrize("kind", sorted(GENERATOR_SHAPES))
def test_generators_are_seeded(kind):
    a = load_dataset({"kind": kind, "n": 50, "seed": 1})
    b = load_dataset({"kind": kind, "n": 50, "seed": 1})
    c = load_dataset({"kind": kind, "n": 50, "seed": 2})
    for name in a.names():
        np.testing.assert_array_equal(a[name], b[name])
    assert any(not np.array_equal(a[name], c[name]) for name in a.names())


def test_spiral_arms_are_karpathys():
    data = datasets.spiral(n=301, classes=3, noise=0.0)
    x, y = data["x"], data["y"]
    assert np.bincount(y).tolist() == [101, 100, 100]
    radius = np.hypot(x[:, 0], x[:, 1])
    for arm in range(3):
        r = radius[y == arm]
        np.testing.assert_allclose(r, np.linspace(0, 1, r.size), atol=1e-12)
        theta = np.arctan2(x[y == arm, 0], x[y == arm, 1])        # x = r sin t, y = r cos t
        expected = np.linspace(4 * arm, 4 * arm + 4, r.size)
        np.testing.assert_allclose(np.cos(theta[1:]), np.cos(expected[1:]), atol=1e-9)
    assert datasets.spiral(n=40, classes=5)["y"].max() == 4


def test_moons_and_circles_without_noise_lie_on_their_curves():
    moons = datasets.moons(n=100, noise=0.0)
    upper, lower = moons["x"][moons["y"] == 0], moons["x"][moons["y"] == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0)
    assert (upper[:, 1] >= -1e-12).all() and (lower[:, 1] <= 0.5 + 1e-12).all()

    circles = datasets.circles(n=100, noise=0.0, factor=0.3)
    radius = np.hypot(*circles["x"].T)
    np.testing.assert_allclose(radius[circles["y"] == 0], 1.0)
    np.testing.assert_allclose(radius[circles["y"] == 1], 0.3)
    assert np.bincount(circles["y"]).tolist() == [50, 50]


def test_xor_labels_differing_signs():
    data = datasets.xor(n=500, noise=0.0)
    x, y = data["x"], data["y"]
    assert (np.abs(x) <= 1).all()
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(np.int64))
    assert 0.4 < y.mean() < 0.6


def test_sine_is_a_sine():
    data = datasets.sine(n=200, noise=0.0)
    assert data["x"].min() >= -np.pi and data["x"].max() <= np.pi
    np.testing.assert_allclose(data["y"], np.sin(data["x"]))
    noisy = datasets.sine(n=2000, noise=0.1)
    assert np.std(noisy["y"] - np.sin(noisy["x"])) == pytest.approx(0.1, rel=0.1)


def test_seq_sum_targets_are_sums_and_lengths_are_fixed_by_default():
    data = datasets.seq_sum(n=64)
    assert (data["length"] == 10).all()
    np.testing.assert_allclose(data["target"], data["seq"].sum(axis=1))
    assert data["x"] is data["seq"] and data["y"] is data["target"]


@pytest.mark.parametrize("kind", ["seq_sum", "seq_parity", "copy_first"])
def test_variable_lengths_pad_with_zeros_to_max_len(kind):
    data = load_dataset({"kind": kind, "n": 200, "min_len": 3, "max_len": 12, "seed": 0})
    seq, lengths = data["seq"], data["length"]
    assert seq.shape[1] == 12
    assert lengths.min() >= 3 and lengths.max() <= 12 and len(set(lengths.tolist())) > 5
    steps = np.arange(12)
    assert not seq[steps[None, :] >= lengths[:, None]].any()      # padding is zero
    if kind == "copy_first":                                      # each real step is one-hot
        np.testing.assert_array_equal(seq.sum(axis=2), steps[None, :] < lengths[:, None])


def test_seq_parity_targets_are_parities():
    data = datasets.seq_parity(n=300, min_len=5, max_len=20)
    bits = data["seq"]
    assert set(np.unique(bits).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(data["target"], bits.sum(axis=(1, 2)).astype(np.int64) % 2)
    assert 0.35 < data["target"].mean() < 0.65


def test_copy_first_target_is_the_first_symbol():
    data = datasets.copy_first(n=300, symbols=5)
    np.testing.assert_array_equal(data["target"], data["seq"][:, 0].argmax(axis=1))
    assert set(data["target"].tolist()) == set(range(5))


def _evaluate(tokens, children, n, modulus):
    """An expression's value, read from the tree by recursion (a reference for the generator)."""
    token, (left, right) = tokens[n], children[n]
    if token <= 10:
        assert left == right == -1, "a digit is a leaf"
        return (token - 1) % modulus
    a, b = _evaluate(tokens, children, left, modulus), _evaluate(tokens, children, right, modulus)
    return (a + b, a - b, a * b)[token - 11] % modulus


def _prefix(tokens, children, n):
    left, right = children[n]
    return [tokens[n]] + ([] if left < 0 else _prefix(tokens, children, left)
                          + _prefix(tokens, children, right))


def test_expression_trees_are_children_first_and_their_targets_are_their_values():
    data = datasets.expr_trees(n=300, min_nodes=3, max_nodes=15, modulus=7, seed=4)
    assert set(data["length"].tolist()) == {3, 5, 7, 9, 11, 13, 15}  # two operands per operator
    for i in range(300):
        size, kids = data["length"][i], data["children"][i]
        assert data["root"][i] == size - 1 == data["last"][i]
        nodes = np.arange(len(kids))[:, None]
        assert np.all((kids == -1) | (kids < nodes)), "children come before their parent"
        assert np.all(data["tokens"][i, size:] == 0) and np.all(kids[size:] == -1)
        assert _evaluate(data["tokens"][i], kids, size - 1, 7) == data["target"][i]
        assert data["prefix"][i, :size].tolist() == _prefix(data["tokens"][i], kids, size - 1)
    assert set(np.unique(data["tokens"])) == set(range(14))  # padding, ten digits, + - x


def test_the_adding_problem_marks_one_step_in_each_half_and_sums_their_values():
    data = datasets.adding(n=100, length=20, seed=3)
    values, markers = data["seq"][..., 0], data["seq"][..., 1]
    assert np.all(markers[:, :10].sum(axis=1) == 1) and np.all(markers[:, 10:].sum(axis=1) == 1)
    np.testing.assert_allclose(data["target"][:, 0], (values * markers).sum(axis=1))


def test_running_max_is_the_largest_digit_so_far():
    data = datasets.running_max(n=50, length=6, vocab=5, seed=1)
    for tokens, target in zip(data["tokens"], data["target"]):
        assert target.tolist() == [max(tokens[:i + 1]) for i in range(6)]


def test_the_built_in_digits_are_1797_images_of_ten_classes():
    data = load_dataset({"kind": "digits"})
    assert data["x"].shape == (1797, 1, 8, 8) and data["x"].dtype == np.float64
    assert 0.0 <= data["x"].min() and data["x"].max() == 1.0
    assert np.bincount(data["y"]).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    with pytest.raises(DataError, match="takes no parameters"):
        load_dataset({"kind": "digits", "n": 10})


def test_rotations_turn_each_point_its_own_number_of_times():
    data = datasets.rotations(n=200, max_steps=5, angle=90.0, seed=1)
    assert set(data["steps"].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    x, k = data["x"], data["steps"].astype(int)
    turned = x.copy()
    for _ in range(5):  # a quarter turn: (x, y) -> (-y, x), while a sample has turns left
        left = k > 0
        turned[left] = np.stack([-turned[left, 1], turned[left, 0]], axis=1)
        k -= 1
    np.testing.assert_allclose(data["target"], turned, atol=1e-12)


@pytest.mark.parametrize("of", ["spiral", "moons", "circles", "xor"])
def test_pairs_are_half_same_class_and_never_a_point_with_itself(of):
    data = datasets.pairs(n=1000, of=of, seed=2)
    same = data["class_a"] == data["class_b"]
    np.testing.assert_array_equal(same, data["same"] == 1)
    assert data["same"].sum() == 500
    assert not np.any(np.all(data["a"] == data["b"], axis=1))


@pytest.mark.parametrize("spec, message", [
    ({"n": 10}, (r'missing "kind" \(known: adding, circles, copy_first, csv, digits, expr_trees, '
                 r'moons, npy, npz, pairs, rotations, running_max, seq_parity')),
    ({"kind": "spirals", "n": 10}, r"unknown kind 'spirals' \(known: adding, circles, copy_first"),
    ({"kind": "pairs", "n": 10, "of": "sine"}, "of must be one of spiral, moons, circles, xor"),
    ({"kind": "expr_trees", "n": 10, "min_nodes": 9, "max_nodes": 5},
     "max_nodes must be an integer >= 9"),
    ({"kind": "spiral", "n": 10, "nosie": 0.1},
     r"dataset 'spiral': unknown parameter 'nosie' \(known: n, classes, noise, seed\)"),
    ({"kind": "spiral"}, "dataset 'spiral': missing parameter 'n'"),
    ({"kind": "spiral", "n": 0}, "n must be an integer >= 1, got 0"),
    ({"kind": "spiral", "n": 10.5}, "n must be an integer"),
    ({"kind": "spiral", "n": 10, "classes": 1}, "classes must be an integer >= 2"),
    ({"kind": "moons", "n": 10, "noise": -1}, "noise must be a number >= 0"),
    ({"kind": "circles", "n": 10, "factor": 2}, "factor must be a number between 0 and 1"),
    ({"kind": "xor", "n": 10, "seed": "abc"}, "seed must be an integer >= 0"),
    ({"kind": "seq_sum", "n": 10, "min_len": 9, "max_len": 4}, "min_len 9 is more than max_len 4"),
    ({"kind": "csv"}, "dataset 'csv': missing parameter 'path'"),
    ({"kind": "csv", "path": "a.csv", "colums": {}}, r"unknown parameter 'colums' \(known: path"),
    ("spiral", "must be an object"),
])
def test_bad_dataset_specs_are_named(spec, message):
    with pytest.raises(DataError, match=message):
        load_dataset(spec)


def test_data_errors_are_graph_errors():
    assert issubclass(DataError, GraphError)


# -- CSV files ------------------------------------------------------------------------------

def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, newline="")
    return path


def test_iris_loads_as_features_and_class_ids():
    spec = {"kind": "csv", "path": "iris.csv",
            "columns": {"x": IRIS_FEATURES, "label": "species"}}
    data = load_dataset(spec, base_dir=os.path.dirname(IRIS))
    assert len(data) == 150
    assert data["x"].shape == (150, 4) and data["x"].dtype == np.float64
    assert data["label"].dtype == np.int64
    assert data.classes == {"label": ["setosa", "versicolor", "virginica"]}
    assert np.bincount(data["label"]).tolist() == [50, 50, 50]
    np.testing.assert_array_equal(data["x"][0], [5.1, 3.5, 1.4, 0.2])
    np.testing.assert_array_equal(data["x"][-1], [5.9, 3.0, 5.1, 1.8])
    # Fisher's data, as R's `iris` and scikit-learn ship it (column means and sample 38)
    np.testing.assert_allclose(data["x"].mean(axis=0), [5.843333, 3.057333, 3.758, 1.199333],
                               atol=1e-6)
    np.testing.assert_array_equal(data["x"][37], [4.9, 3.6, 1.4, 0.1])


def test_csv_without_columns_gives_every_column_by_its_name():
    data = datasets.read_csv(IRIS)
    assert data.names() == IRIS_FEATURES + ["species"]
    assert data["sepal_length"].shape == (150,)
    assert data.classes == {"species": ["setosa", "versicolor", "virginica"]}


def test_csv_path_is_relative_to_the_document(tmp_path):
    (tmp_path / "data").mkdir()
    write(tmp_path / "data", "t.csv", "a,b\n1,2\n3,4\n")
    data = load_dataset({"kind": "csv", "path": "data/t.csv"}, base_dir=tmp_path)
    np.testing.assert_array_equal(data["b"], [2.0, 4.0])


def test_csv_text_classes_in_order_of_first_appearance(tmp_path):
    path = write(tmp_path, "t.csv", "v,label\n1,cat\n2,dog\n3,cat\n4,bird\n")
    data = datasets.read_csv(str(path), {"x": ["v"], "label": "label"})
    assert data["x"].shape == (4, 1)
    np.testing.assert_array_equal(data["label"], [0, 1, 0, 2])
    assert data.classes["label"] == ["cat", "dog", "bird"]


def test_csv_tolerates_bom_crlf_spaces_quotes_and_blank_lines(tmp_path):
    text = '\ufeffa, b ,name\r\n 1.5 ,2,"x, y"\r\n\r\n3,4e-1,z\r\n\r\n'
    path = write(tmp_path, "t.csv", text.encode("utf-8"), mode="wb")
    data = datasets.read_csv(str(path))
    assert data.names() == ["a", "b", "name"]
    np.testing.assert_array_equal(data["a"], [1.5, 3.0])
    np.testing.assert_array_equal(data["b"], [2.0, 0.4])
    assert data.classes["name"] == ["x, y", "z"]


def test_csv_delimiter(tmp_path):
    write(tmp_path, "t.tsv", "a;b\n1;2\n")
    data = load_dataset({"kind": "csv", "path": "t.tsv", "delimiter": ";"}, tmp_path)
    assert data["b"].tolist() == [2.0]


@pytest.mark.parametrize("text, columns, message", [
    ("a,b\n1,2\n3,oops\n5,6\n", None,
     r"t.csv, row 2 \(line 3\), column 2: expected a number, found text"),
    ("a,b\n1,2\n3,oops\n", {"x": ["a", "b"]},
     r"row 2 \(line 3\), column 'b' \(array 'x'\): expected a number, found text"),
    ("a,b\n1,2\n3,\n", {"x": ["a", "b"]}, r"row 2 \(line 3\), column 'b' .*an empty value"),
    ("a,b\n1,2\n3,nan\n", None, "column 2: expected a finite number, found NaN or infinity"),
    ("a,b\n1,2\n3,4,5\n", None, r"t.csv, row 2 \(line 3\): 3 values, but the header has 2"),
    ("a,b\n1,2\n\n3\n", None, r"row 2 \(line 4\): 1 values"),
    ("a,b\n1,2\n", {"x": ["a", "c"]}, r"array 'x' names column 'c', which the header row does not have \(it has 2 columns"),
    ("a,b\n1,2\n", {"x": []}, "must name a column or a non-empty list"),
    ("a,b\n1,2\n", ["a"], "\"columns\" must map array names"),
    ("a,a\n1,2\n", None, r"the header row repeats a column name \(columns 1 and 2\)"),
    ("", None, "the file is empty"),
    ("a,b\n", None, "no rows of data"),
    ("v,label\n1,cat\n2,\n", None, r"row 2 \(line 3\), column 2: an empty value"),
])
def test_bad_csv_is_named_with_file_column_and_row(tmp_path, text, columns, message):
    write(tmp_path, "t.csv", text)
    spec = {"kind": "csv", "path": "t.csv"}
    if columns is not None:
        spec["columns"] = columns
    with pytest.raises(DataError, match=message):
        load_dataset(spec, base_dir=tmp_path)


def test_missing_file_is_named(tmp_path):
    for kind in ["csv", "npz", "npy"]:
        with pytest.raises(DataError, match=f"dataset file 'nope.{kind}' not found") as info:
            load_dataset({"kind": kind, "path": f"nope.{kind}"}, base_dir=tmp_path)
        assert str(tmp_path) in info.value.message


# -- NPZ and NPY files ---------------------------------------------------------------------

def test_npz_arrays_keep_their_names(tmp_path):
    x, y = np.arange(12.0).reshape(4, 3), np.array([0, 1, 1, 0])
    np.savez(tmp_path / "d.npz", inputs=x, labels=y)
    data = load_dataset({"kind": "npz", "path": "d.npz"}, base_dir=tmp_path)
    assert data.names() == ["inputs", "labels"]
    np.testing.assert_array_equal(data["inputs"], x)
    np.testing.assert_array_equal(data["labels"], y)


def test_npz_text_arrays_become_class_ids(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), label=np.array(["b", "a", "b", "c"]))
    data = datasets.read_npz(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(data["label"], [0, 1, 0, 2])
    assert data.classes == {"label": ["b", "a", "c"]}


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 2)), "y": np.zeros(3)}, r"arrays have different numbers of rows \(x has 4, y has 3\)"),
    ({"x": np.zeros((4, 2)), "s": np.array(1.0)}, "array 's' is a single value"),
    ({"x": np.array([{}, {}], dtype=object)}, "array 'x' holds Python objects"),
    ({"x": np.zeros(2, dtype=complex)}, "array 'x' has dtype complex128"),
])
def test_bad_npz_is_named(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=f"d.npz: {message}"):
        load_dataset({"kind": "npz", "path": "d.npz"}, base_dir=tmp_path)


def test_npz_that_is_not_an_archive(tmp_path):
    write(tmp_path, "d.npz", "hello")
    with pytest.raises(DataError, match=r"d.npz: not a valid .npz archive \(not a zip file\)"):
        load_dataset({"kind": "npz", "path": "d.npz"}, base_dir=tmp_path)
    np.save(tmp_path / "e.npy", np.zeros(3))
    with pytest.raises(DataError, match="not an .npz archive"):
        load_dataset({"kind": "npz", "path": "e.npy"}, base_dir=tmp_path)


def test_npz_declaring_200_million_rows_is_refused_from_its_header_at_once(tmp_path):
    """Issue 12: such a file was "holds Python objects"; it is a file too small for its shape."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(4))
    header["shape"] = (200_000_000, 2)
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive, \
            archive.open("x.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(np.zeros(4).tobytes())
    started = time.perf_counter()
    with pytest.raises(DataError) as info:
        load_dataset({"kind": "npz", "path": "bomb.npz"}, base_dir=tmp_path)
    assert time.perf_counter() - started < 2.0
    assert "bomb.npz: array 'x' declares shape (200000000, 2)" in info.value.message
    assert "more than the file holds" in info.value.message
    assert "Python objects" not in info.value.message


def test_a_truncated_npz_or_npy_is_said_so(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((50, 2)))
    write(tmp_path, "cut.npz", (tmp_path / "d.npz").read_bytes()[:300], "wb")
    with pytest.raises(DataError, match="cut.npz: truncated"):
        load_dataset({"kind": "npz", "path": "cut.npz"}, base_dir=tmp_path)
    np.save(tmp_path / "a.npy", np.zeros((50, 2)))
    write(tmp_path, "cut.npy", (tmp_path / "a.npy").read_bytes()[:300], "wb")
    with pytest.raises(DataError, match="cut.npy: the array declares shape .* more than the "
                                        "file holds"):
        load_dataset({"kind": "npy", "path": "cut.npy"}, base_dir=tmp_path)


@pytest.mark.parametrize("kind", ["csv", "npz", "npy"])
def test_a_folder_is_not_a_dataset_file(tmp_path, kind):
    (tmp_path / f"d.{kind}").mkdir()
    with pytest.raises(DataError, match=f"dataset file 'd.{kind}' is a folder"):
        load_dataset({"kind": kind, "path": f"d.{kind}"}, base_dir=tmp_path)


# -- messages never quote what a file holds ------------------------------------------------------
# A dataset path may point at a private file (a key, a password file): what the reader says
# about it names the file, the line and the column, and what was expected, never the text.

SECRET = "TOPSECRET-4d2f"


@pytest.mark.parametrize("text, columns", [
    (f"{SECRET}\nline two\n", {"x": ["a", "b"]}),                 # header without the columns
    (f"{SECRET},{SECRET}\n1,2\n", None),                           # a repeated header name
    (f"a,b\n1,2\n3,{SECRET}\n4,5\n", None),                         # text among numbers
    (f"a,b\n1,2\n3,{SECRET}\n", {"x": ["a", "b"]}),
    (f"a,b\n1,2\n3,4,{SECRET}\n", None),                           # a row too long
    (f"{SECRET}\n\"unclosed\n", None),
    (f"{SECRET}\n".encode() + b"\xff\xfe", None),                      # not UTF-8
])
def test_csv_errors_never_quote_the_file(tmp_path, text, columns):
    write(tmp_path, "private", text, "wb" if isinstance(text, bytes) else "w")
    spec = {"kind": "csv", "path": "private"}
    if columns is not None:
        spec["columns"] = columns
    try:
        data = load_dataset(spec, base_dir=tmp_path)
    except DataError as error:
        assert SECRET not in error.message and "private" in error.message
    else:
        with pytest.raises(DataError) as info:
            data["x"]
        assert SECRET not in info.value.message


@pytest.mark.parametrize("kind", ["npz", "npy"])
def test_binary_readers_never_quote_the_file(tmp_path, kind):
    write(tmp_path, "private", f"{SECRET}\n" * 20)
    with pytest.raises(DataError) as info:
        load_dataset({"kind": kind, "path": "private"}, base_dir=tmp_path)
    assert SECRET not in info.value.message and "private" in info.value.message


def test_names_from_a_csv_header_are_counted_not_quoted(tmp_path):
    write(tmp_path, "private", f"{SECRET}\nsome\ntext\n")
    data = load_dataset({"kind": "csv", "path": "private"}, base_dir=tmp_path)
    train, _ = split(data, 0.5, seed=0)
    for dataset in (data, train, data.subset(np.arange(1))):
        assert dataset.named_by_file
        assert SECRET not in dataset.listed_names()
        with pytest.raises(DataError, match="no array 'x' \\(arrays: 1 named by the header"):
            dataset["x"]
    named = load_dataset({"kind": "csv", "path": IRIS_CSV_NAME, "columns": {"x": IRIS_FEATURES}},
                         base_dir=os.path.dirname(IRIS))
    assert named.listed_names() == "x"


def test_npy_is_one_array_named_x_or_as_asked(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(3, 2))
    assert load_dataset({"kind": "npy", "path": "a.npy"}, tmp_path).names() == ["x"]
    data = load_dataset({"kind": "npy", "path": "a.npy", "name": "seq"}, tmp_path)
    assert data["seq"].shape == (3, 2)


# -- Dataset, split and batches ------------------------------------------------------------

def test_dataset_checks_lengths_and_names_missing_arrays():
    with pytest.raises(DataError, match=r"x has 3, y has 2"):
        Dataset({"x": np.zeros(3), "y": np.zeros(2)})
    data = Dataset({"x": np.zeros(3)}, source="demo")
    with pytest.raises(DataError, match=r"demo: no array 'y' \(arrays: x\)"):
        data["y"]


def test_split_is_seeded_disjoint_and_complete():
    data = Dataset({"x": np.arange(100.0)[:, None], "i": np.arange(100)})
    train, val = split(data, validation=0.2, seed=0)
    assert (len(train), len(val)) == (80, 20)
    assert sorted(np.concatenate([train["i"], val["i"]]).tolist()) == list(range(100))
    np.testing.assert_array_equal(train["x"][:, 0], train["i"])       # rows stay together
    again, _ = split(data, validation=0.2, seed=0)
    other, _ = split(data, validation=0.2, seed=1)
    np.testing.assert_array_equal(train["i"], again["i"])
    assert not np.array_equal(train["i"], other["i"])
    assert sorted(val["i"].tolist()) != list(range(80, 100))           # a random draw


def test_split_keeps_classes_and_aliases():
    data = load_dataset({"kind": "seq_parity", "n": 50})
    data.classes["target"] = ["even", "odd"]
    train, val = split(data, 0.3, seed=2)
    assert train.classes == {"target": ["even", "odd"]}
    assert train["x"] is train["seq"] and val["y"] is val["target"]


def test_split_edges():
    data = Dataset({"x": np.arange(10)})
    train, val = split(data, validation=0.0)
    assert (len(train), len(val)) == (10, 0)
    with pytest.raises(DataError, match="validation must be a number between 0 and 1"):
        split(data, validation=1.5)
    with pytest.raises(DataError, match="leaves no rows to train on"):
        split(data, validation=0.99)


def test_batches_cover_every_row_once_with_a_partial_last_batch():
    data = {"x": np.arange(10.0)[:, None] * [1, -1], "y": np.arange(10)}
    got = list(batches(data, 4, np.random.default_rng(0)))
    assert [len(b["y"]) for b in got] == [4, 4, 2]
    seen = np.concatenate([b["y"] for b in got])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for b in got:
        np.testing.assert_array_equal(b["x"][:, 0], b["y"])             # rows stay together


def test_batches_reshuffle_each_epoch_reproducibly():
    data = {"y": np.arange(50)}

    def epochs(seed):
        rng = np.random.default_rng(seed)
        return [np.concatenate([b["y"] for b in batches(data, 8, rng)]) for _ in range(3)]

    first, second = epochs(0), epochs(0)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


def test_batches_in_order_are_views():
    x = np.arange(10.0)
    got = list(batches({"x": x}, 3, None, shuffle=False))
    assert [b["x"].tolist() for b in got] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert all(np.shares_memory(b["x"], x) for b in got)


def test_batch_size_is_checked():
    with pytest.raises(DataError, match="batch_size must be an integer >= 1"):
        list(batches({"x": np.zeros(3)}, 0, 0))


def test_split_and_batches_are_fast_on_big_data():
    data = Dataset({"x": np.zeros((500_000, 8)), "y": np.zeros(500_000, dtype=np.int64)})
    start = time.perf_counter()
    train, _ = split(data, 0.2, seed=0)
    rows = sum(len(b["y"]) for b in batches(train, 256, np.random.default_rng(0)))
    assert rows == 400_000
    assert time.perf_counter() - start < 2.0
