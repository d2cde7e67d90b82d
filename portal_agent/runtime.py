"""Wiring from settings: database (migrated on start), vault, evidence store, browser pool, sweep runner."""

from __future__ import annotations

from dataclasses import dataclass

from agent.browser import BrowserPool
from agent.evidence import EvidenceStore
from agent.sweep import SweepRunner
from core.config import Settings
from portals import load_adapters
from store import repo
from store.db import make_engine, migrate, session_factory
from store.vault import Vault


@dataclass
class Runtime:
    settings: Settings
    engine: object
    Session: object  # sessionmaker
    vault: Vault
    evidence: EvidenceStore
    pool: BrowserPool

    @classmethod
    def start(cls, settings: Settings, *, browser: BrowserPool | None = None) -> Runtime:
        """`browser`: a pool whose Chromium this runtime shares (its own contexts; the Chromium outlives it);
        None starts one of its own on first use."""
        engine = make_engine(settings.resolved_database_url())
        migrate(engine)
        Session = session_factory(engine)
        with Session() as s:
            repo.load_code_tables(s)
            s.commit()
        vault = Vault.from_settings(settings.vault_keys, settings.data_dir)
        load_adapters()
        return cls(settings, engine, Session, vault, EvidenceStore(settings.data_dir / "evidence", vault),
                   BrowserPool(settings.browser, shares=browser))

    def runner(self, **kw) -> SweepRunner:
        return SweepRunner(self.settings, self.Session, self.pool, self.evidence, self.vault, **kw)

    async def aclose(self) -> None:
        await self.pool.close()
        self.engine.dispose()
