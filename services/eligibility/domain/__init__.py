"""The pure core of eligibility: rule sets, entitlement functions and the decision ledger.

No I/O, no clock, no randomness: the same facts under the same rule set give the same decisions.
"""
