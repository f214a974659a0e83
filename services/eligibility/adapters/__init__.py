"""adapters of eligibility."""
