"""`python -m services.payments`: decision consumer, order relay, projection and HTTP API."""

from services.payments.bootstrap import bootstrap
from services.runtime.process import main

if __name__ == "__main__":
    main("payments", bootstrap, lambda settings: settings.payments_port)
