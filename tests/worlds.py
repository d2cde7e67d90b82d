"""What tests take from a sandbox world: small worlds (the claims a test needs, not all of them), the
demo accounts' credentials."""

from __future__ import annotations

from core.credentials import Credentials


def account_credentials(sandbox, portal: str, i: int = 0) -> Credentials:
    """The credentials of the portal's i-th demo account (password and TOTP secret)."""
    a = sandbox.account(portal, i)
    return Credentials(username=a["username"], password=a["password"], totp_secret=a["totp_secret"])


def sample_claims(ground_truth: dict, per_kind: int) -> set[str]:
    """Up to `per_kind` submitted claims of every (portal, kind) of the world: each way a claim can look on
    each portal (paid, denied, partial, zero pay, in process, pended, rejected, overturned...), without the
    dozens of plain paid claims a full world adds."""
    picked: dict[tuple[str, str], list[str]] = {}
    for c in sorted(ground_truth["claims"], key=lambda c: c["claim_id"]):
        if c["visible"]:
            group = picked.setdefault((c["portal"], c.get("kind") or ""), [])
            if len(group) < per_kind:
                group.append(c["claim_id"])
    return {cid for group in picked.values() for cid in group}
