"""Tools for operators of a deployed stack (they work against the local stack too)."""
