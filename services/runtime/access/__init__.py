"""One authentication and authorisation module for the HTTP APIs of the three services
(docs/design/http-auth.md).

Pure: `principals` (roles), `credentials` (API keys, the key ring's events and fold, `authenticate`),
`policy` (the endpoint table: who may call what and what they see), `pseudonyms`.
Adapters: `store` (the access event store: key ring and read audit, schema `access`), `key_ring`
(the ring followed into memory), `operator_key` (the bootstrap operator key), `audit` (recording
reads), `gate` (the FastAPI/ASGI side: 401/403, the `Caller`, answers).
"""
