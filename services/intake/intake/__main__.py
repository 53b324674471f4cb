from leadrelay_shared.runtime import main

from .bootstrap import create_app
from .settings import IntakeSettings

if __name__ == "__main__":
    settings = IntakeSettings()
    # The client's address and scheme come from X-Forwarded-* only when intake is told it is
    # behind a proxy: uvicorn's own proxy headers follow the same setting as intake's audit.
    main(
        package="intake",
        schema="intake",
        settings=settings,
        create_app=create_app,
        proxy_headers=settings.trust_forwarded_for,
    )
