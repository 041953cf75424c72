"""The one error type users see: GraphError, which names the node it is about."""

from __future__ import annotations


class GraphError(Exception):
    """Something wrong with a document, a feed or a run, said so that a user can act on it.

    `node` is the node's path (`rnn/cell`, `@Residual/fc` for a block definition), or None.
    `errors` lists every problem found when several were (validation reports them all); a
    single error lists itself.
    """

    def __init__(self, message: str, node: str | None = None, errors: list | None = None):
        super().__init__(message)
        self.message = message
        self.node = node
        self.errors = errors if errors else [self]

    def __str__(self) -> str:
        return self.message

    @classmethod
    def collect(cls, errors: list) -> GraphError:
        """One error standing for several: the first one's message, and how many follow."""
        first = errors[0]
        if len(errors) == 1:
            return first
        more = len(errors) - 1
        message = f"{first.message} (and {more} more problem{'s' if more > 1 else ''})"
        return cls(message, first.node, list(errors))


class DataError(GraphError):
    """A dataset that cannot be read or used: names the file, column or array, and the row."""
