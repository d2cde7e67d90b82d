"""Portal accounts: credentials and saved browser sessions only ever stored encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.credentials import Credentials
from store.models import PortalAccount
from store.vault import Vault


def upsert_account(s: Session, vault: Vault, *, org_id: int, portal_key: str, base_url: str,
                   creds: Credentials) -> PortalAccount:
    acct = s.scalar(select(PortalAccount).where(PortalAccount.org_id == org_id,
                                                PortalAccount.portal_key == portal_key,
                                                PortalAccount.username == creds.username))
    secret = vault.encrypt_json({"password": creds.password, "totp_secret": creds.totp_secret})
    if acct is None:
        acct = PortalAccount(org_id=org_id, portal_key=portal_key, base_url=base_url, username=creds.username,
                             secret_ciphertext=secret, status="active", consecutive_failures=0)
        s.add(acct)
    else:
        acct.base_url, acct.secret_ciphertext = base_url, secret
    s.flush()
    return acct


def credentials(vault: Vault, acct: PortalAccount) -> Credentials:
    d = vault.decrypt_json(acct.secret_ciphertext)
    return Credentials(username=acct.username, password=d["password"], totp_secret=d.get("totp_secret"))


def saved_state(vault: Vault, acct: PortalAccount) -> dict | None:
    if not acct.storage_state_ciphertext:
        return None
    return vault.decrypt_json(acct.storage_state_ciphertext)


def save_state(vault: Vault, acct: PortalAccount, state: dict | None) -> None:
    acct.storage_state_ciphertext = vault.encrypt_json(state) if state else None


def needs_attention(acct: PortalAccount, reason: str, now: datetime, failed_login: bool) -> None:
    acct.status = "needs_attention"
    acct.attention_reason = reason
    if failed_login:
        acct.last_failed_login_at = now


def clear_attention(acct: PortalAccount) -> None:
    """A human looked at the account (e.g. unlocked it on the portal): passwords may be sent again."""
    acct.status = "active"
    acct.attention_reason = None
    acct.consecutive_failures = 0


def rotate_all(s: Session, vault: Vault) -> int:
    """Re-encrypt every stored secret and saved session under the vault's newest key."""
    n = 0
    for acct in s.scalars(select(PortalAccount)):
        acct.secret_ciphertext = vault.rotate(acct.secret_ciphertext)
        if acct.storage_state_ciphertext:
            acct.storage_state_ciphertext = vault.rotate(acct.storage_state_ciphertext)
        n += 1
    return n
