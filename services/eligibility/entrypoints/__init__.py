"""entrypoints of eligibility."""
