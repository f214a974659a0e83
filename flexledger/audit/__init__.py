"""The audit ledger's tools: replay, verify, history, what-if, checkpoints and database roles
(`flexledger audit ...`; docs/design/audit.md). They read the services' event tables directly."""
