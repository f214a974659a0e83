"""`python -m services.eligibility`: fact consumer, decision relay, projection and HTTP API."""

from services.eligibility.bootstrap import bootstrap
from services.runtime.process import main

if __name__ == "__main__":
    main("eligibility", bootstrap, lambda settings: settings.eligibility_port)
