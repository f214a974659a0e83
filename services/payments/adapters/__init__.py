"""adapters of payments."""
