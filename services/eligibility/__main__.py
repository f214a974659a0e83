"""`python -m services.eligibility`: fact consumer, decision relay, projection and HTTP API."""

from contracts.runtime import main
from services.eligibility.bootstrap import EligibilityService

if __name__ == "__main__":
    main("eligibility", EligibilityService, lambda settings: settings.eligibility_port)
