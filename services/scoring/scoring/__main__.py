from leadrelay_shared.runtime import main

from .adapters.orm import SCHEMA
from .bootstrap import create_app
from .settings import ScoringSettings

if __name__ == "__main__":
    main(package="scoring", schema=SCHEMA, settings=ScoringSettings(), create_app=create_app)
