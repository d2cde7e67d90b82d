"""The one typed settings object (env prefix PORTAL_AGENT_). Defaults run the sandbox on SQLite."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class BrowserSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_AGENT_BROWSER_")

    # None = Playwright's own downloaded Chromium; Debian's is /usr/bin/chromium.
    executable_path: str | None = "/usr/bin/chromium"
    headless: bool = True
    args: list[str] = Field(
        default_factory=lambda: [
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ]
    )


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_AGENT_SANDBOX_")

    host: str = "127.0.0.1"
    clearinghouse_port: int = 8101
    commercial_port: int = 8102
    medicaid_port: int = 8103
    control_port: int = 8100
    seed: int = 7
    size: int = 500
    accounts_per_portal: int = 4
    profile: str = "off"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_AGENT_", env_nested_delimiter="__")

    data_dir: Path = REPO_ROOT / "var"
    database_url: str = ""
    shared_dir: Path = REPO_ROOT.parent / "shared"
    # Fernet keys for secrets at rest, comma-separated, newest first (empty: a key file in data_dir)
    vault_keys: str = ""
    browser: BrowserSettings = Field(default_factory=BrowserSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'portal_agent.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
