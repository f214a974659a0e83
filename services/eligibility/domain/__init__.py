"""The pure core of eligibility: rule sets, the programmes' entitlement functions and
the entitlement state that turns each accepted fact into the decisions it causes.

No I/O, no clock, no randomness: the same facts under the same rule set give the same decisions.
"""
