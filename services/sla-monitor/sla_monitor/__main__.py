from leadrelay_shared.runtime import main

from .adapters.orm import SCHEMA
from .bootstrap import create_app
from .settings import SlaSettings

if __name__ == "__main__":
    main(package="sla_monitor", schema=SCHEMA, settings=SlaSettings(), create_app=create_app)
