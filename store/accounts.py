"""Portal accounts: credentials and saved browser sessions only ever stored encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.credentials import Credentials
from store import events, repo
from store.models import Claim, PortalAccount
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


# ---------------------------------------------------------------- what a sweep learns of an account
def session_saved(s: Session, vault: Vault, account_id: int, state: dict | None, *,
                  succeeded_at: datetime | None = None) -> None:
    """The account's logged-in browser session (encrypted), and when it last checked a claim."""
    acct = s.get(PortalAccount, account_id)
    save_state(vault, acct, state)
    if succeeded_at is not None:
        acct.last_success_at = succeeded_at


def signed_in(s: Session, account_id: int, at: datetime) -> None:
    """A sign-in passed: a human's attention is no longer needed."""
    acct = s.get(PortalAccount, account_id)
    acct.last_login_at = at
    if acct.status == "needs_attention":
        clear_attention(acct)


def account_failed(s: Session, account_id: int, *, error_type: str, message: str, at: datetime,
                   failed_login: bool) -> PortalAccount:
    """An account-level refusal (bad password, lockout, MFA, a gate a human must pass): needs attention."""
    acct = s.get(PortalAccount, account_id)
    needs_attention(acct, f"{error_type}: {message}", at, failed_login=failed_login)
    acct.last_error = error_type
    return acct


def record_run_health(s: Session, account_id: int, *, at: datetime, checked: int, failed: int,
                      consecutive_failures: int, circuit_open_since: datetime | None, circuit_known: bool,
                      drift: tuple[str, str | None] | None) -> PortalAccount:
    """What one run of the account showed: last check and failure, the failure streak (failures since the
    run's last success, or added to the earlier streak when it had none), its portal's circuit, drift (with
    its page as evidence; an outbox event)."""
    acct = s.get(PortalAccount, account_id)
    if checked:
        acct.last_check_at = at
        acct.consecutive_failures = consecutive_failures
    else:
        acct.consecutive_failures = (acct.consecutive_failures or 0) + consecutive_failures
    if failed:
        acct.last_failure_at = at
    if circuit_known:
        acct.circuit_state = "closed" if circuit_open_since is None else "open"
        acct.circuit_opened_at = circuit_open_since
    if drift is not None:
        reason, evidence_ref = drift
        acct.drift_at, acct.drift_reason, acct.drift_evidence_ref = at, reason[:2000], evidence_ref
        events.emit(s, acct.org_id, events.PortalDriftDetected(account_id=acct.id, portal=acct.portal_key,
                                                               reason=reason[:500], evidence_ref=evidence_ref))
    return acct


def canary_to_read(s: Session, account_id: int):
    """(the account's canary claim, its settled fingerprint or None while a candidate); a candidate is chosen
    when it has none (None, None when the account has no claim to choose)."""
    acct = s.get(PortalAccount, account_id)
    claim = s.get(Claim, acct.canary_claim_id) if acct.canary_claim_id else None
    if claim is None:
        claim = repo.canary_candidate(s, acct)
        if claim is None:
            return None, None
        acct.canary_claim_id, acct.canary_fingerprint, acct.canary_pinned = claim.id, None, False
    return claim, acct.canary_fingerprint


def record_canary_read(s: Session, account_id: int, claim_id: int, *, at: datetime, result: str,
                       settle_after: int | None) -> None:
    """The canary's reading this run. `settle_after`: for a candidate read well, the reads in a row that
    settle it (its fingerprint becomes the canary's; one that moved is dropped for another)."""
    acct = s.get(PortalAccount, account_id)
    acct.canary_checked_at, acct.canary_result = at, result
    if settle_after is not None:
        fps = repo.recent_fingerprints(s, claim_id, settle_after)
        if len(set(fps)) > 1:  # it moved: not settled, choose another next time
            acct.canary_claim_id = None
        elif len(fps) >= settle_after:
            acct.canary_fingerprint = fps[0]
