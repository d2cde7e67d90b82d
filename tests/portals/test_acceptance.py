"""The adapter acceptance suite: ONE suite every adapter passes against its sandbox portal.

Adding a portal = adapter (registered) + fixture portal + one line in ADAPTERS below. Each case drives the
adapter exactly as the agent does (a guarded BrowserSession from agent.browser) and compares what it
returns with the sandbox's ground truth, field by field.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.claims import ClaimQuery
from core.errors import ClaimNotFound, LoginRejected, Maintenance, PortalDrift, SessionExpired
from portals import load_adapters
from tests.worlds import account_credentials

ADAPTERS = ["clearinghouse", "commercial", "medicaid"]  # one line per portal
KINDS = ["paid", "denied", "partial", "zero_pay", "in_process", "rejected", "overturned"]



@pytest.fixture(params=ADAPTERS)
def portal(request):
    return request.param


@pytest.fixture
def adapter(portal):
    reg = load_adapters()
    if portal not in reg:
        pytest.fail(f"no adapter registered for portal {portal!r}")
    return reg[portal]()



_MEMBERS: dict[str, dict] = {}
_NPI_ORG: dict[str, str] = {}


def query(c: dict, *, by_number: bool) -> ClaimQuery:
    m = _MEMBERS[c["member_id"]]
    return ClaimQuery(claim_ref=c["pcn"], payer_key=c["payer_id"],
                      payer_claim_number=c["payer_claim_number"] if by_number else None,
                      member_id=c["member_id"], patient_dob=date.fromisoformat(m["dob"]),
                      patient_first_name=m["first_name"], patient_last_name=m["last_name"], dos_from=date.fromisoformat(c["dos_from"]),
                      dos_to=date.fromisoformat(c["dos_to"]), billing_npi=c["billing_npi"],
                      billed=Decimal(c["billed"]), org_external_id=_NPI_ORG[c["billing_npi"]])


def sample(gt: dict, portal: str, kind: str) -> dict:
    _MEMBERS.update({m["member_id"]: m for m in gt["members"]})
    _NPI_ORG.update({p["npi"]: p["org_id"] for p in gt["providers"]})
    for c in gt["claims"]:
        if c["portal"] == portal and c["visible"] and c.get("kind") == kind:
            return c
    pytest.fail(f"the sandbox world has no {kind} claim on {portal}")


def expected(c: dict) -> dict:
    def d(x):
        return None if x is None else Decimal(x)

    return {
        "status": (c["status_category"], c["status_code_shown"]),  # the code where the page shows one
        "payer_claim_number": c["payer_claim_number"],
        "amounts": (d(c["billed"]), d(c.get("allowed")), d(c.get("paid")), d(c.get("patient_responsibility"))),
        "check": (c.get("check_number"), c.get("check_date")),
        "lines": [
            (ln["line_no"], ln["cpt"], tuple(ln["modifiers"]), d(ln["billed"]), d(ln.get("allowed")),
             d(ln.get("paid")), tuple(sorted((a["group"], a["carc"], d(a["amount"])) for a in ln.get("adjustments", []))),
             tuple(sorted(ln.get("rarcs", []))))
            for ln in c["lines"]
        ] if c.get("allowed") is not None else [],
    }


def actual(r) -> dict:
    return {
        "status": (r.status_category, r.status_code),
        "payer_claim_number": r.payer_claim_number,
        "amounts": (r.billed, r.allowed, r.paid, r.patient_responsibility),
        "check": (r.check_number, r.check_date.isoformat() if r.check_date else None),
        "lines": [
            (ln.line_no, ln.cpt, tuple(ln.modifiers), ln.billed, ln.allowed, ln.paid,
             tuple(sorted((a.group, a.carc, a.amount) for a in ln.adjustments)), tuple(sorted(ln.rarcs)))
            for ln in r.lines
        ] if r.allowed is not None else [],
    }


async def test_login_and_verify(sandbox, pool, adapter, portal):
    s = await pool.session_for(adapter, sandbox.url(portal))  # the session the runner gives the adapter
    await adapter.login(s, account_credentials(sandbox, portal))
    try:
        assert await adapter.verify(s)
        assert s.blocked == [], "login needed a request the adapter did not declare"
    finally:
        await s.close()
    fresh = await pool.session_for(adapter, sandbox.url(portal))
    try:
        assert not await adapter.verify(fresh)
    finally:
        await fresh.close()


async def test_bad_password_is_rejected_once(sandbox, pool, adapter, portal):
    s = await pool.session_for(adapter, sandbox.url(portal))
    bad = account_credentials(sandbox, portal).model_copy(update={"password": "wrong-password-1!"})
    try:
        with pytest.raises(LoginRejected):
            await adapter.login(s, bad)
    finally:
        await s.close()
    assert sandbox.counters().get(f"{portal}.login_failed") == 1
    assert not sandbox.counters().get(f"{portal}.lockouts")


@pytest.mark.parametrize("kind", KINDS)
async def test_lookup_matches_ground_truth(sandbox, signed_in, adapter, portal, kind):
    gt = sandbox.ground_truth()
    c = sample(gt, portal, kind)
    s = await signed_in(adapter, portal)
    try:
        modes = [True, False] if c["payer_claim_number"] else [False]
        for by_number in modes:
            r = await adapter.claim_status(s, query(c, by_number=by_number))
            assert actual(r) == expected(c), f"{kind} by_number={by_number}"
            assert r.raw_label
            if kind == "rejected":
                assert r.is_rejection and r.payer_claim_number is None
        assert s.blocked == []
    finally:
        await s.close()


async def test_not_found(sandbox, signed_in, adapter, portal):
    gt = sandbox.ground_truth()
    c = dict(sample(gt, portal, "paid"))
    c["dos_from"] = c["dos_to"] = "2019-01-15"  # nothing billed then
    s = await signed_in(adapter, portal)
    try:
        with pytest.raises(ClaimNotFound):
            await adapter.claim_status(s, query(c, by_number=False))
    finally:
        await s.close()


async def test_session_expiry_is_reported_then_recovered(sandbox, signed_in, adapter, portal):
    c = sample(sandbox.ground_truth(), portal, "paid")
    s = await signed_in(adapter, portal)
    try:
        sandbox.faults(session_expiry_rate=1.0)
        with pytest.raises(SessionExpired):
            await adapter.claim_status(s, query(c, by_number=False))
        sandbox.faults(session_expiry_rate=0.0)
        await adapter.login(s, account_credentials(sandbox, portal))
        r = await adapter.claim_status(s, query(c, by_number=False))
        assert actual(r) == expected(c)
    finally:
        await s.close()


async def test_maintenance_is_retryable(sandbox, signed_in, adapter, portal):
    c = sample(sandbox.ground_truth(), portal, "paid")
    s = await signed_in(adapter, portal)
    try:
        sandbox.faults(maintenance=True)
        with pytest.raises(Maintenance):
            await adapter.claim_status(s, query(c, by_number=False))
    finally:
        await s.close()


async def test_layout_variant_is_drift(sandbox, signed_in, adapter, portal):
    c = sample(sandbox.ground_truth(), portal, "denied")
    s = await signed_in(adapter, portal)
    try:
        sandbox.faults(layout="v2")
        with pytest.raises(PortalDrift):
            await adapter.claim_status(s, query(c, by_number=True))
    finally:
        await s.close()
