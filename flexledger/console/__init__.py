"""The web console (issue 19): its own process, server-rendered pages over the services' HTTP APIs.

It never holds a key of its own for reading: every page calls the services with the logged-in
user's API key, so the services' policy (services/runtime/access/policy.py) decides what the user
sees; the console adds its own page x role check in front (`pages.PAGE_ROLES`) and masks identity
numbers unless the role may see them. Composition root: `bootstrap.py`.
"""
