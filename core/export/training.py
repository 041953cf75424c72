"""The parts of an exported module that train: weights files, data, batches, optimizer."""

from __future__ import annotations


def weights_loader(weights_file):
    return ""


def numpy_main(exporter):
    return ""
