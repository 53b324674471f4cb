from leadrelay_shared.runtime import main

from .adapters.orm import SCHEMA
from .bootstrap import create_app
from .settings import RouterSettings

if __name__ == "__main__":
    main(package="router", schema=SCHEMA, settings=RouterSettings(), create_app=create_app)
