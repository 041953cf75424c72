"""The training section has one schema (core/training_section.py): its keys, their defaults and
their checks are the same for the trainer, the exports, the editor's form and the docs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from wiregrad.core import fileio, training_section
from wiregrad.core.export import runtime, runtime_torch
from wiregrad.core.export.training import plan_of
from wiregrad.core.optim import OPTIMIZERS
from wiregrad.core.trainer import read_plan
from wiregrad.core.training_section import (
    DEFAULT_LR,
    DEFAULTS,
    NAMES,
    filled,
    problems,
    rename_node,
)

from tests.test_trainer import spiral_doc
from wiregrad import core

DOCS = Path(__file__).parents[1] / "docs" / "training.md"


def minimal_doc():
    doc = spiral_doc()
    doc.training = {"dataset": {"kind": "spiral", "n": 60}, "loss": "loss"}
    return doc


# -- one default for each key ---------------------------------------------------------------


def test_the_learning_rate_defaults_to_pytorchs_1e_3_everywhere():
    assert DEFAULT_LR == 1e-3
    assert DEFAULTS["optimizer"] == {"type": "adam", "lr": DEFAULT_LR}
    for kind, optimizer in OPTIMIZERS.items():  # the engine's optimizers, by their signatures
        assert inspect.signature(optimizer).parameters["lr"].default == DEFAULT_LR, kind
    assert read_plan(minimal_doc()).optimizer["lr"] == DEFAULT_LR  # the trainer
    doc = minimal_doc()
    doc.training["optimizer"] = {"type": "sgd", "momentum": 0.9}
    assert read_plan(doc).optimizer == {"type": "sgd", "momentum": 0.9, "lr": DEFAULT_LR}
    assert plan_of(doc)["optimizer"]["lr"] == DEFAULT_LR  # what an exported script runs by


def test_a_section_with_only_the_required_keys_reads_with_every_default():
    plan = read_plan(minimal_doc())
    assert (plan.feeds, plan.metrics, plan.optimizer) == \
        (DEFAULTS["feeds"], DEFAULTS["metrics"], DEFAULTS["optimizer"])
    assert (plan.validation, plan.split_seed) == (0.2, 0)
    assert (plan.batch_size, plan.epochs, plan.seed) == (32, 10, 0)
    assert (plan.clip, plan.dtype, plan.eval_batch_size) == (None, "float32", None)


def test_an_exported_script_is_given_every_default_and_has_none_of_its_own():
    full = filled(minimal_doc().training)
    assert list(full) == [n for n in NAMES if n in full]
    assert set(full) == set(NAMES)
    assert full["split"] == {"validation": 0.2, "seed": 0}
    for module in (runtime, runtime_torch):
        source = inspect.getsource(module)
        assert not re.search(r"(TRAINING|plan)\.get\(", source), module.__name__
        assert "1e-3" not in source


def test_the_file_reader_and_the_schema_know_the_same_keys():
    assert tuple(fileio.TRAINING_KEYS) == NAMES


def test_the_reference_table_in_the_docs_is_the_schemas():
    assert training_section.markdown_table() in DOCS.read_text(encoding="utf-8")


# -- checks, each naming its key ------------------------------------------------------------


@pytest.mark.parametrize("key,value,words", [
    ("batch_size", 0, "training.batch_size must be a whole number >= 1, got 0"),
    ("batch_size", 2.5, "training.batch_size must be a whole number >= 1, got 2.5"),
    ("epochs", -1, "training.epochs must be a whole number >= 0, got -1"),
    ("seed", True, "training.seed must be a whole number >= 0, got True"),
    ("eval_batch_size", 0, "training.eval_batch_size must be a whole number >= 1"),
    ("clip_grad_norm", -1.0, "training.clip_grad_norm must be a positive number, got -1.0"),
    ("dtype", "float16", "training.dtype must be float32 or float64, got 'float16'"),
    ("split", {"validation": 1.0}, "training.split.validation must be a number in [0, 1)"),
    ("split", {"valid": 0.1}, "training.split must be {\"validation\": fraction"),
    ("feeds", {"x": 3}, "training.feeds must map Input ids to dataset array names"),
    ("metrics", [{"type": "f1", "pred": "a", "target": "b"}], "training.metrics[0] must be"),
    ("optimizer", {"type": "adagrad"}, "training.optimizer: unknown type 'adagrad'"),
    ("optimizer", {"type": "adam", "lr": "fast"}, "training.optimizer: adam: lr must be a number"),
    ("optimizer", {"type": "sgd", "schedule": {"type": "step"}},
     "training.optimizer.schedule: step needs step_size"),
    ("dataset", "spiral", "training.dataset must be an object with a \"kind\""),
    ("loss", 3, "training.loss must name a top-level Output, got 3"),
    ("bogus", 1, "training: unknown key 'bogus'"),
])
def test_a_wrong_value_is_an_error_naming_its_key(key, value, words):
    section = {**minimal_doc().training, key: value}
    messages = [e.message for e in problems(section)]
    assert len(messages) == 1 and words in messages[0], messages


def test_every_problem_is_listed_at_once_and_reading_stops_on_them():
    doc = minimal_doc()
    doc.training.update(batch_size=0, dtype="half")
    del doc.training["loss"]
    messages = [e.message for e in problems(doc.training)]
    assert messages == ["training: missing 'loss'",
                        "training.batch_size must be a whole number >= 1, got 0",
                        "training.dtype must be float32 or float64, got 'half'"]
    with pytest.raises(core.GraphError) as info:
        read_plan(doc)
    assert len(info.value.errors) == 3


def test_command_line_overrides_are_checked_as_the_keys_are():
    with pytest.raises(core.GraphError, match="training.epochs must be a whole number >= 0"):
        read_plan(minimal_doc(), epochs=-2)
    assert read_plan(minimal_doc(), epochs=3, seed=7).epochs == 3


def test_renaming_a_node_renames_it_in_feeds_loss_and_metrics():
    section = spiral_doc().training
    renamed = rename_node(section, "label", "target")
    assert renamed["feeds"] == {"x": "x", "target": "y"}
    assert renamed["metrics"][0]["target"] == "target"
    assert rename_node(section, "loss", "objective")["loss"] == "objective"
    assert section["feeds"] == {"x": "x", "label": "y"}  # the section given is left alone


def test_the_analysis_tells_the_editor_which_errors_training_ignores():
    from wiregrad.core.compiler import analyze

    from tests.test_trainer import with_stray_nodes

    doc = with_stray_nodes(spiral_doc())
    assert analyze(doc).ignored_by_training == {"sigmoid"}
    doc.remove_edge((), next(e for e in doc.graph.edges if e.dst == "act"))
    analysis = analyze(doc)
    assert {e.node for e in analysis.errors} == {"sigmoid", "act"}
    assert analysis.ignored_by_training == {"sigmoid"}  # act is on the loss's path
    doc.training = None
    assert analyze(doc).ignored_by_training == set()  # nothing to train: nothing is ignored
