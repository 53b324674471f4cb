from leadrelay_shared.runtime import main

from .bootstrap import create_app
from .settings import IntakeSettings

if __name__ == "__main__":
    main(package="intake", schema="intake", settings=IntakeSettings(), create_app=create_app)
