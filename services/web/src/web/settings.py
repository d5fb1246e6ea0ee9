from pathlib import Path

from pydantic import Field, SecretStr

from knotenpunkt.settings import ServiceSettings

ASSETS = Path(__file__).resolve().parents[2] / "node_modules"


class WebSettings(ServiceSettings):
    """The web app owns no domain data: its database holds only the signed-in sessions."""

    service_name: str = Field(default="web", description="Name used in logs.")
    http_port: int = Field(default=8000, description="Port of the web app.")
    database_url: str = Field(
        default="postgresql://web:web@127.0.0.1:5432/web",
        description="PostgreSQL DSN of the web app's own database (sessions only).",
    )
    public_url: str = Field(
        default="http://localhost:8000",
        description="The address people open (the sign-in returns there: <public_url>/auth/callback).",
    )
    intake_url: str = Field(default="http://127.0.0.1:8001", description="Base URL of intake's API.")
    cases_url: str = Field(default="http://127.0.0.1:8002", description="Base URL of cases' API.")
    referrals_url: str = Field(default="http://127.0.0.1:8003", description="Base URL of referrals' API.")
    stats_url: str = Field(default="http://127.0.0.1:8004", description="Base URL of stats' API.")
    api_timeout_s: float = Field(default=10.0, description="Longest wait for a service's answer.")
    session_idle_minutes: int = Field(default=30, gt=0, description="A session unused this long ends (sign in again).")
    session_max_hours: int = Field(default=10, gt=0, description="A session ends after this long, used or not.")
    secure_cookies: bool | None = Field(
        default=None, description="Session cookie only over HTTPS; unset: when public_url is https."
    )
    assets_dir: Path | None = Field(
        default=None,
        description="The npm packages the pages use (KERN UX, htmx); empty: services/web/node_modules of the source "
        "tree, installed by `make install` (npm ci). The image sets /app/web-assets.",
    )
    oidc_client_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The web app's client secret in the realm (empty: the realm file's local default).",
    )

    @property
    def assets(self) -> Path:
        return self.assets_dir or ASSETS

    @property
    def cookies_secure(self) -> bool:
        return self.public_url.startswith("https://") if self.secure_cookies is None else self.secure_cookies
