"""Metrics: accuracy on class ids, one-hot targets and binary logits; mse and mae."""

import math

import numpy as np
import pytest
from wiregrad.core import metrics
from wiregrad.core.errors import GraphError

LOGITS = np.array([[2.0, 1.0, 0.1],
                   [0.5, 3.0, 0.2],
                   [0.1, 0.2, 0.3],
                   [1.0, 1.0, 0.0]])      # a tie: the first arg-max (class 0) is the prediction


def test_accuracy_with_class_ids():
    assert metrics.accuracy(LOGITS, np.array([0, 1, 2, 0])) == 1.0
    assert metrics.accuracy(LOGITS, np.array([0, 1, 0, 1])) == 0.5


def test_accuracy_with_class_ids_as_whole_floats():
    assert metrics.accuracy(LOGITS, np.array([0.0, 1.0, 2.0, 2.0])) == 0.75


def test_accuracy_with_one_hot_or_probability_targets():
    one_hot = np.eye(3)[[0, 1, 1, 0]]
    assert metrics.accuracy(LOGITS, one_hot) == 0.75
    soft = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.1, 0.6, 0.3]])
    assert metrics.accuracy(LOGITS, soft) == 0.75


def test_accuracy_over_sequences_counts_every_position():
    pred = np.zeros((2, 3, 4))
    pred[..., 1] = 1.0                                       # always predicts class 1
    target = np.array([[1, 1, 0], [1, 2, 3]])
    assert metrics.accuracy(pred, target) == pytest.approx(3 / 6)


@pytest.mark.parametrize("pred_shape, target_shape", [((4, 1), (4,)), ((4, 1), (4, 1)), ((4,), (4,))])
def test_accuracy_with_one_logit_is_binary(pred_shape, target_shape):
    logits = np.array([2.0, -1.0, 0.5, -0.1]).reshape(pred_shape)
    labels = np.array([1.0, 0.0, 0.0, 0.0]).reshape(target_shape)
    assert metrics.accuracy(logits, labels) == 0.75
    probabilities = 1 / (1 + np.exp(-logits))
    assert metrics.accuracy(probabilities, labels, threshold=0.5) == 0.75


@pytest.mark.parametrize("pred, target, message", [
    (np.zeros((4, 3)), np.zeros(5, dtype=int), r"pred of shape \(4, 3\) and target of shape \(5,\)"),
    (np.zeros((4, 3)), np.zeros((4, 2)), "do not fit"),
    (np.zeros((4, 3)), np.array([0.5, 1, 2, 0]), "holds fractions"),
    (np.float64(1.0), np.zeros(()), "needs an axis of class scores"),
])
def test_accuracy_refuses_shapes_that_do_not_fit(pred, target, message):
    with pytest.raises(GraphError, match=message):
        metrics.accuracy(pred, target)


def test_mse_and_mae():
    pred = np.array([[1.0], [2.0], [4.0]])
    target = np.array([[1.0], [0.0], [5.0]])
    assert metrics.mse(pred, target) == pytest.approx((0 + 4 + 1) / 3)
    assert metrics.mae(pred, target) == pytest.approx((0 + 2 + 1) / 3)
    assert metrics.mse(pred, 1.0) == pytest.approx((0 + 1 + 9) / 3)     # a broadcast target


def test_mse_and_mae_match_torch_and_return_floats():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((8, 5)).astype(np.float32), rng.standard_normal((8, 5))
    tp, tt = torch.tensor(pred, dtype=torch.float64), torch.tensor(target)
    assert metrics.mse(pred, target) == pytest.approx(torch.nn.functional.mse_loss(tp, tt).item())
    assert metrics.mae(pred, target) == pytest.approx(torch.nn.functional.l1_loss(tp, tt).item())
    assert type(metrics.mse(pred, target)) is float


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_regression_metrics_refuse_silent_broadcasting(name):
    with pytest.raises(GraphError, match=rf"{name}: pred of shape \(3, 1\) and target of shape \(3,\)"):
        metrics.METRICS[name](np.zeros((3, 1)), np.zeros(3))


def test_metrics_leave_their_inputs_alone():
    pred, target = np.array([1.0, -2.0]), np.array([0.0, 0.0])
    metrics.mse(pred, target)
    metrics.mae(pred, target)
    np.testing.assert_array_equal(pred, [1.0, -2.0])


def test_empty_inputs_give_nan():
    assert math.isnan(metrics.accuracy(np.zeros((0, 3)), np.zeros(0, dtype=int)))
    assert math.isnan(metrics.mse(np.zeros((0, 1)), np.zeros((0, 1))))


def test_metrics_by_type_name():
    assert metrics.get_metric("accuracy") is metrics.accuracy
    assert set(metrics.METRICS) == {"accuracy", "mse", "mae"}
    with pytest.raises(GraphError, match=r"unknown metric type 'f1' \(known: accuracy, mae, mse\)"):
        metrics.get_metric("f1")
