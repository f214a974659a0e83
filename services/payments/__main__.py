"""`python -m services.payments`: decision consumer, order relay, projection and HTTP API."""

from services.payments.bootstrap import PaymentsService
from services.runtime.process import main

if __name__ == "__main__":
    main("payments", PaymentsService, lambda settings: settings.payments_port)
