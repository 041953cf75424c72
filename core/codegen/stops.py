"""Stopping a run between two steps of a loop.

A training step can be one long call: a while Loop of a million steps is one step of training.
So every loop the generator writes (forward and backward, in every mode) first calls
`stop_point()`. In an exported module that is the function below, which does nothing (Ctrl+C
stops a standalone script by itself). The engine binds its own in the namespace of a program's
functions (`Program.stopping`): while a run watches a stop request, `stop_point()` asks it, and a
set request ends the call with `StopRequested`; the trainer then ends the run as stopped,
without the interrupted step.

The check is one call and one `is_set()` per loop step: tens of nanoseconds, against the
microseconds a step's numpy calls take.
"""

from __future__ import annotations


class StopRequested(Exception):
    """A run was asked to stop, and one of its loops ended it between two steps."""


def stop_point():
    """Where a loop step begins: the engine may stop a run here; this copy never does."""


def checker(stop):
    """A `stop_point` that raises StopRequested once `stop.is_set()` (an Event, or anything
    with that method)."""
    is_set = stop.is_set

    def stop_point():
        if is_set():
            raise StopRequested

    return stop_point


__all__ = ["StopRequested", "checker", "stop_point"]
