"""entrypoints of intake."""
