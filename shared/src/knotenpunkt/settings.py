"""Configuration through environment variables only, each with a safe default for local runs.

Every service's settings class derives from ServiceSettings; the variables are `KP_<FIELD>`
(for example KP_DATABASE_URL). docs/operations.md lists them, and a test checks that the
compose file sets exactly the variables a service's settings class knows.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "KP_"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = Field(description="Name used in logs, consumer groups and ce_source.")
    http_host: str = Field(default="127.0.0.1", description="Interface the HTTP API binds to (0.0.0.0 in containers).")
    http_port: int = Field(default=8000, description="Port of the HTTP API.")
    database_url: str = Field(
        default="postgresql://knotenpunkt:knotenpunkt@127.0.0.1:5432/knotenpunkt",
        description="PostgreSQL DSN of this service's own database.",
    )
    db_pool_min_size: int = Field(default=1, description="Smallest asyncpg pool size.")
    db_pool_max_size: int = Field(default=10, description="Largest asyncpg pool size.")
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers, comma separated.")
    topic_partitions: int = Field(default=3, description="Partitions for event topics this service creates if missing.")
    log_level: str = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_json: bool | None = Field(default=None, description="JSON logs; unset means JSON unless stdout is a terminal.")
    outbox_poll_interval_s: float = Field(
        default=0.5,
        description="Longest wait of the outbox relay between polls (a NOTIFY wakes it sooner).",
    )
    outbox_batch_size: int = Field(default=500, description="Outbox rows published per round.")
    outbox_backlog_refresh_s: float = Field(
        default=15.0,
        gt=0,
        description="How often every replica counts the outbox backlog for its metric, leader or not (seconds).",
    )
    # Retention: docs/decisions/0011-housekeeping.md explains each window; 0 keeps rows for ever.
    housekeeping_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often the service's housekeeping runs: pruning published outbox rows, processed events "
        "and idempotency keys (seconds).",
    )
    outbox_retention_hours: int = Field(
        default=168,
        ge=0,
        description="Hours a published outbox row is kept for diagnosis (its personal data, if any, is cleared at "
        "publishing); 0 keeps them.",
    )
    processed_events_retention_days: int = Field(
        default=45,
        ge=0,
        description="Days a consumed event's id is kept to recognise it again; longer than any redelivery (agency "
        "topics keep 30 days). 0 keeps them.",
    )
    idempotency_keys_retention_days: int = Field(
        default=7,
        ge=0,
        description="Days an Idempotency-Key and its stored answer are kept for retries of the same request; 0 keeps "
        "them.",
    )
    consumer_max_attempts: int = Field(
        default=12,
        # 0.5, 1, 2, 4, 8, then 10 s apart: about 75 s, so a database restart is ridden out
        # instead of filling the dead-letter topic.
        description="Attempts for a transient failure (database down) before dead-lettering (about 75 s).",
    )
    consumer_backoff_initial_s: float = Field(
        default=0.5, description="First retry delay of a consumer; doubles up to the maximum."
    )
    consumer_backoff_max_s: float = Field(default=10.0, description="Longest retry delay.")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest HTTP request body accepted, in bytes; a larger one is answered 413.",
    )
    consumer_batch_size: int = Field(
        default=2000, description="Most records an event consumer applies in one transaction."
    )
    consumer_stall_after_s: float = Field(
        default=300.0,
        description="Records waiting this long on a partition without progress turn /health/ready to 503.",
    )
    # Identity (docs/operations.md, "Sign-in and roles"): tokens from the Keycloak realm.
    oidc_issuer: str = Field(
        default="http://127.0.0.1:8080/realms/knotenpunkt",
        description="Issuer every access token must name (the Keycloak realm's URL as people's browsers see it).",
    )
    oidc_jwks_url: str = Field(
        default="",
        description="Where the realm's signing keys are fetched (empty: <issuer>/protocol/openid-connect/certs; "
        "set it when the services reach Keycloak under another address than the browsers).",
    )
    oidc_token_url: str = Field(
        default="",
        description="Token endpoint for the service's own client credentials (empty: derived like the JWKS URL).",
    )
    oidc_audience: str = Field(default="knotenpunkt-api", description="Audience every access token must name.")
    oidc_client_id: str = Field(
        default="", description="This service's client in the realm (empty: knotenpunkt-<service name>)."
    )
    oidc_client_secret: SecretStr = Field(
        default=SecretStr(""),
        description="This service's client secret (empty: the realm file's local default, for local runs only).",
    )
    open_metrics: bool = Field(default=True, description="Serve /metrics without a token (for Prometheus).")
    open_docs: bool = Field(default=True, description="Serve /docs and /openapi.json without a token.")
    audit_retention_days: int = Field(
        default=730,
        ge=0,
        description="Days an audit trail entry is kept (default two years); 0 keeps them.",
    )

    @property
    def oidc_base(self) -> str:
        """Where this service reaches the realm: the JWKS URL's realm, else the issuer."""
        return self.oidc_jwks_url.split("/protocol/")[0] if self.oidc_jwks_url else self.oidc_issuer.rstrip("/")

    def oidc_client(self) -> tuple[str, str, str]:
        """(token URL, client id, client secret) of this service's own client."""
        client_id = self.oidc_client_id or f"knotenpunkt-{self.service_name}"
        secret = self.oidc_client_secret.get_secret_value() or f"dev-secret-{client_id}"
        token_url = self.oidc_token_url or f"{self.oidc_base}/protocol/openid-connect/token"
        return token_url, client_id, secret
