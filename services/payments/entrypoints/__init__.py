"""entrypoints of payments."""
