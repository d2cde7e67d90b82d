"""The one typed settings object (env prefix PORTAL_AGENT_). Defaults run the sandbox on SQLite."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class BrowserSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_AGENT_BROWSER_")

    # None = Playwright's own downloaded Chromium. Default: Debian's Chromium headless shell (package
    # chromium-headless-shell: Chromium without its browser UI, what Playwright itself runs for headless; in
    # bench.sweep it cut the browser process's CPU per claim from 0.41 to 0.22 s and evidence screenshots
    # ~5x against /usr/bin/chromium). A headed run (headless = False) uses the full Chromium beside it.
    executable_path: str | None = "/usr/bin/chromium-headless-shell"
    headless: bool = True
    # Let DEBUG=pw:* reach Playwright's driver. Its debug channel prints every call with its arguments: the
    # filled passwords, TOTP codes and member ids. Off: the channel is stripped from DEBUG when the driver
    # starts. For a developer on the sandbox only; a warning says so when it is on.
    driver_debug: bool = False
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

    def launch_path(self) -> str | None:
        """The browser to launch: `executable_path`, or for a headed run the full Chromium beside a headless
        shell (/usr/bin/chromium-headless-shell -> /usr/bin/chromium)."""
        path = self.executable_path or None
        if path and not self.headless and path.endswith("-headless-shell"):
            return path.removesuffix("-headless-shell")
        return path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_AGENT_", env_nested_delimiter="__")

    data_dir: Path = REPO_ROOT / "var"
    # DEBUG | INFO | WARNING | ERROR; empty: each command's own (WARNING for the interactive ones, INFO for
    # serve). Log lines never hold PHI or secrets at any level (core/logging.py).
    log_level: Literal["", "DEBUG", "INFO", "WARNING", "ERROR"] = ""
    database_url: str = ""
    shared_dir: Path = REPO_ROOT.parent / "shared"
    # the public payer deadlines that seed payer playbooks (default: shared_dir/data/payers/payer_deadlines.csv)
    payer_deadlines_csv: Path | None = None
    # Fernet keys for secrets at rest, comma-separated, newest first (empty: a key file in data_dir)
    vault_keys: str = ""
    evidence_retention_days: int = 400
    # sweep policy
    recheck_hours: float = 20.0  # a checked, unfinished claim is due again after this
    sweep_max_claims: int = 20_000  # due claims one sweep takes (oldest due first); the rest wait for the next
    concurrency_per_account: int = 6  # lookups in flight per logged-in session (capped by the adapter's)
    concurrency_total: int = 16  # lookups in flight in this process
    # per portal key: requests/minute to stay under when lower than what the adapter declares
    rate_limits: dict[str, int] = Field(default_factory=dict)
    # requests of each account's budget (tokens, and places in the portal's minute) a sweep always leaves
    # free for on-demand checks: a check arriving while a sweep runs at the portal's limit then sends its
    # first requests at once instead of waiting for the tokens the sweep would take (commercial: ~1.3 s
    # sooner). The cost: a sweep longer than a minute runs that many requests a minute under the limit
    # (commercial 116 -> 111). 0 = sweeps at the limit. At most the bucket's burst - 1 (5).
    on_demand_reserve: int = 0
    canary_reads: int = 3  # identical reads before a candidate canary claim is trusted
    max_attempts: int = 3  # per claim per sweep, for retryable errors
    retry_backoff_s: float = 1.0  # first retry delay; doubles each attempt
    # sign-in attempts per login when a step fails retryably (5xx, dropped connection, page cut short): a
    # login is ~10 requests, so a portal failing a few % of requests fails whole logins far more often than
    # lookups, and a login given up stops every claim of the account left in the sweep. Refusals (password,
    # MFA, lockout) are never retried. Backoff as above: 1+2+4+8 s at most between five attempts.
    login_attempts: int = 5
    # an account whose sign-in was given up that way is signed in again once more, this long after, before
    # its remaining claims fail (a portal's bad minute should not cost the whole sweep); 0 revivals = never
    account_revivals: int = 1
    account_retry_after_s: float = 30.0
    breaker_threshold: int = 5  # consecutive portal-level failures that stop a portal's sweep
    lockout_window_minutes: int = 60
    # seconds a logged-in session is kept open after a sweep or check of its account, for the next check
    # of the same account to use without a login or a restore (the API process sets it; 0 = close at once)
    keep_warm_s: float = 0.0
    recycle_context_every: int = 200  # lookups a page serves before it is closed and a fresh one opened
    # job id -> crontab (UTC): nightly sweep of every portal, a midday pass for hot claims
    schedules: dict[str, str] = Field(default_factory=lambda: {"sweep:all:nightly": "0 2 * * *",
                                                                "sweep:all:midday": "0 13 * * 1-5"})
    # denial escalations (store/escalations.py): how often the scheduler looks for due ones, and how close a
    # payer's hard deadline makes a case urgent
    escalation_every_minutes: int = Field(default=15, ge=1)
    urgent_within_days: int = Field(default=10, ge=0)
    browser: BrowserSettings = Field(default_factory=BrowserSettings)

    def resolved_payer_deadlines_csv(self) -> Path:
        return self.payer_deadlines_csv or self.shared_dir / "data" / "payers" / "payer_deadlines.csv"

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'portal_agent.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
