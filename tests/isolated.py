"""Run one function in a forked child, with a time limit and a memory limit.

A hostile document may make the engine hang or allocate without bound; the test that feeds
it must still end, and the machine must not swap. The child gets a cap on its address space
(what the parent has mapped plus `memory`), so an allocation past it is a MemoryError there;
a child past its time is killed. Forking (not spawning) starts the child in milliseconds, with
everything the parent imported.
"""

from __future__ import annotations

import multiprocessing
import resource
import traceback
from dataclasses import dataclass

GIB = 1 << 30


@dataclass
class Outcome:
    """How a child ended: `value` (what the function returned), `error` (the traceback of
    what it raised, and `error_type` its class name), or `timed_out`."""

    value: object = None
    error: str | None = None
    error_type: str | None = None
    timed_out: bool = False


def run_isolated(function, *args, seconds: float = 10.0, memory: int = 2 * GIB) -> Outcome:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, memory, function, args), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(seconds):
            return Outcome(timed_out=True)
        try:
            return receive.recv()
        except EOFError:  # the child died without a word (killed, or out of memory for good)
            child.join(5)
            return Outcome(error=f"the child ended with exit code {child.exitcode}",
                           error_type="ChildDied")
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join(5)


def _child(send, memory: int, function, args) -> None:
    try:
        _cap_memory(memory)
        outcome = Outcome(value=function(*args))
    except BaseException as exc:  # noqa: BLE001 (everything is reported, that is the point)
        outcome = Outcome(error="".join(traceback.format_exception(exc)),
                          error_type=type(exc).__name__)
    try:
        send.send(outcome)
    except Exception as exc:  # noqa: BLE001 (a value that does not pickle)
        send.send(Outcome(error=f"the result could not be sent back: {exc!r}",
                          error_type=type(exc).__name__))
    send.close()


def _cap_memory(extra: int) -> None:
    mapped = _mapped_bytes()
    if mapped is None:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _mapped_bytes() -> int | None:
    """The address space this process has mapped (Linux); None where that cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
