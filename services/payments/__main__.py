"""`python -m services.payments`: decision consumer, order relay, projection and HTTP API."""

from contracts.runtime import main
from services.payments.bootstrap import PaymentsService

if __name__ == "__main__":
    main("payments", PaymentsService, lambda settings: settings.payments_port)
