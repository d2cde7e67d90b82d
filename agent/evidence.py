"""Evidence on disk: each capture encrypted with the vault, named by a random ref, with a DB row
(store.models.Evidence) holding the SHA-256 of the HTML and the screenshot. PHI: never logged."""

from __future__ import annotations

import base64
import hashlib
import json
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
        blob = self.vault.encrypt_json({"html": cap.html, "screenshot": base64.b64encode(cap.screenshot).decode(),
                                        "screenshot_type": cap.screenshot_type, "url_path": cap.url_path,
                                        "frames": cap.frames})
        path.write_bytes(blob)
        row = repo.add_evidence(s, ref=ref, org_id=org_id, claim_id=claim_id, account_id=account_id,
                                portal_key=portal_key, observed_at=cap.taken_at, kind=kind, reason=cap.reason,
                                url_path=cap.url_path, html_sha256=cap.html_sha256,
                                screenshot_sha256=cap.screenshot_sha256, screenshot_type=cap.screenshot_type,
                                blob_path=str(path.relative_to(self.root)))
        return row

    def load(self, row: Evidence) -> tuple[str, bytes]:
        html, shot, _ = self.load_all(row)
        return html, shot

    def load_all(self, row: Evidence) -> tuple[str, bytes, list[dict]]:
        data = self.vault.decrypt_json((self.root / row.blob_path).read_bytes())
        shot = data["screenshot"] if "screenshot" in data else data["png"]  # evidence kept before JPEG
        return data["html"], base64.b64decode(shot), data.get("frames", [])

    def verify(self, row: Evidence) -> bool:
        """The stored page and screenshot still hash to what was recorded when they were read."""
        html, shot, frames = self.load_all(row)
        h = hashlib.sha256(html.encode())
        for f in frames:
            h.update(b"\x00" + f["html"].encode())
        return h.hexdigest() == row.html_sha256 and hashlib.sha256(shot).hexdigest() == row.screenshot_sha256

    def export(self, row: Evidence, out_dir: Path, claim_external_id: str | None = None) -> list[Path]:
        """Write the evidence as files a biller can attach to an appeal: the screenshot (what a human saw),
        the page's HTML (frames' HTML beside it), and a manifest with the hashes. Refuses evidence whose
        hashes no longer verify."""
        if not self.verify(row):
            raise ValueError(f"evidence {row.ref}: stored content does not match its recorded hashes")
        html, shot, frames = self.load_all(row)
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = row.observed_at.strftime("%Y%m%dT%H%M%SZ")
        base = f"{claim_external_id or 'claim'}_{row.portal_key}_{stamp}_{row.ref}"
        ext = "jpg" if row.screenshot_type == "jpeg" else row.screenshot_type
        files = [out_dir / f"{base}.{ext}", out_dir / f"{base}.html"]
        files[0].write_bytes(shot)
        files[1].write_text(html, encoding="utf-8")
        for i, f in enumerate(frames, 1):
            path = out_dir / f"{base}.frame{i}.html"
            path.write_text(f["html"], encoding="utf-8")
            files.append(path)
        manifest = {
            "evidence_ref": row.ref, "claim": claim_external_id, "portal": row.portal_key,
            "account_id": row.account_id, "observed_at": row.observed_at.isoformat(), "kind": row.kind,
            "reason": row.reason, "page_path": row.url_path,
            "html_sha256": row.html_sha256, "screenshot_sha256": row.screenshot_sha256,
            "screenshot_type": row.screenshot_type,
            "html_hash_covers": "the page HTML, then for each frame a NUL byte and the frame HTML",
            "frames": [{"file": files[2 + i].name, "path": f["url_path"]} for i, f in enumerate(frames)],
            "files": [p.name for p in files],
        }
        mpath = out_dir / f"{base}.manifest.json"
        mpath.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return [*files, mpath]

    def purge(self, s, retention_days: int, now: datetime | None = None) -> int:
        """Delete evidence older than the retention period (files and rows)."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        rows = repo.evidence_older_than(s, cutoff)
        for row in rows:
            (self.root / row.blob_path).unlink(missing_ok=True)
        repo.forget_evidence(s, rows)
        return len(rows)
