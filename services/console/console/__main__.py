from leadrelay_shared.runtime import main

from .adapters.orm import SCHEMA
from .bootstrap import create_app
from .settings import ConsoleSettings

if __name__ == "__main__":
    main(package="console", schema=SCHEMA, settings=ConsoleSettings(), create_app=create_app)
