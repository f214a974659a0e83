"""adapters of intake."""
