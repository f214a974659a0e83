"""`python -m services.eligibility`: fact consumer, decision relay, projection and HTTP API."""

from services.eligibility.bootstrap import EligibilityService
from services.runtime.process import main

if __name__ == "__main__":
    main("eligibility", EligibilityService, lambda settings: settings.eligibility_port)
