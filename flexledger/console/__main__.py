"""`python -m flexledger.console`: the web console (issue 19), on `console_port`."""

from flexledger.console.bootstrap import bootstrap
from services.runtime.process import main

if __name__ == "__main__":
    main("console", bootstrap, lambda settings: settings.console_port)
