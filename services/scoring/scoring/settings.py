from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")

    port: int = 8001
    consumer_group: str = "leadrelay-scoring"
