"""`python -m services.intake`: intake's HTTP API and outbox relay, configured by Settings.from_env()."""

from contracts.runtime import main
from services.intake.bootstrap import IntakeService

if __name__ == "__main__":
    main("intake", IntakeService, lambda settings: settings.intake_port)
