"""Evidence on disk: each capture encrypted with the vault, named by a random ref, with a DB row
(store.models.Evidence) holding the SHA-256 of the HTML and the screenshot. PHI: never logged."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.browser import Capture
from store import repo
from store.models import Evidence
from store.vault import Vault


class EvidenceStore:
    def __init__(self, root: Path, vault: Vault) -> None:
        self.root = root
        self.vault = vault

    def save(self, s, cap: Capture, *, portal_key: str, kind: str, org_id: int | None = None,
             claim_id: int | None = None, account_id: int | None = None) -> Evidence:
        ref = f"ev_{secrets.token_hex(12)}"
        day = cap.taken_at.strftime("%Y%m%d")
        path = self.root / day / f"{ref}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = self.vault.encrypt_json({"html": cap.html, "png": base64.b64encode(cap.png).decode(),
                                        "url_path": cap.url_path})
        path.write_bytes(blob)
        row = Evidence(ref=ref, org_id=org_id, claim_id=claim_id, account_id=account_id, portal_key=portal_key,
                       observed_at=cap.taken_at, kind=kind, reason=cap.reason, url_path=cap.url_path,
                       html_sha256=cap.html_sha256, png_sha256=cap.png_sha256,
                       blob_path=str(path.relative_to(self.root)))
        s.add(row)
        return row

    def load(self, row: Evidence) -> tuple[str, bytes]:
        data = self.vault.decrypt_json((self.root / row.blob_path).read_bytes())
        return data["html"], base64.b64decode(data["png"])

    def purge(self, s, retention_days: int, now: datetime | None = None) -> int:
        """Delete evidence older than the retention period (files and rows)."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        rows = repo.evidence_older_than(s, cutoff)
        for row in rows:
            (self.root / row.blob_path).unlink(missing_ok=True)
            s.delete(row)
        return len(rows)
