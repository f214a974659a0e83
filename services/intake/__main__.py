"""`python -m services.intake`: intake's HTTP API and outbox relay, configured by Settings.from_env()."""

from services.intake.bootstrap import bootstrap
from services.runtime.process import main

if __name__ == "__main__":
    main("intake", bootstrap, lambda settings: settings.intake_port)
