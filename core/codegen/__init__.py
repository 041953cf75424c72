"""Generating the engine's numpy code from each node type's one rule."""
