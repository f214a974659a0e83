"""What the three services share besides the wire contracts: settings, the event store, the outbox,
Kafka clients, tracing and the process runtime. It imports no service (import-linter checks it)."""
