from leadrelay_shared.runtime import main

from .adapters.orm import SCHEMA
from .bootstrap import create_app
from .settings import AnalyticsSettings

if __name__ == "__main__":
    main(package="analytics", schema=SCHEMA, settings=AnalyticsSettings(), create_app=create_app)
