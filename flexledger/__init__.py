"""flexledger: the event-sourced subsidy ledger's command line and tools."""

__version__ = "0.1.0"  # the one place of the version: pyproject.toml reads it ([tool.hatch.version])
