"""(filled in by the node library work)."""
