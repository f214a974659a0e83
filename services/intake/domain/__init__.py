"""The pure core of intake: shape validation (contracts.facts), then the policy checks of RULES.md
section 5 against what was accepted before."""
