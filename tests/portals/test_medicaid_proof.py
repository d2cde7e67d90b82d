"""Medicaid adapter: proof of what was read (issue 10) and lookups in flight on one session (issue 9).

Real Chromium against the sandbox portal, driven as the agent drives it (guarded BrowserSession, one
lease per lookup). Every result is compared with the sandbox's ground truth for the claim asked for:
a lookup either returns THAT claim's status or raises a clear claim-level error, never another claim's.
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest

from agent.pacing import TokenBucket
from agent.proof import unproven
from core.claims import ClaimQuery
from core.credentials import Credentials
from core.errors import AmbiguousClaim, ClaimMismatch, ClaimNotFound, SessionExpired
from portals import load_adapters
from portals.medicaid.mapping import icn, normalize_claim_number

PORTAL = "medicaid"
WRONG_THING_SWITCHES = ("medicaid.near_matches", "medicaid.duplicate_claims", "medicaid.stale_detail",
                        "medicaid.icn_format")


# ---------------------------------------------------------------- claim-number normalization (no browser)
@pytest.mark.parametrize("printed", ["2261230000045", "2-26123-0000045", "002-26123-0000045",
                                     "ICN 226 123 0000045", "icn# 2261230000045", " 2261230000045 ",
                                     "2261230000045".zfill(15), "226.123.0000045"])
def test_claim_number_formats_normalize_to_one_key(printed):
    assert normalize_claim_number(printed) == "2261230000045"
    assert icn(printed) == "2261230000045"


def test_claim_number_normalization_keeps_different_numbers_apart():
    assert normalize_claim_number("2261230000045") != normalize_claim_number("2261230000046")
    assert normalize_claim_number("2261230000045") != normalize_claim_number("22612300000450")
    assert normalize_claim_number("NOT ASSIGNED") is None and normalize_claim_number(None) is None
    assert icn("12345678901234") is None  # 14 digits: not an ICN, the adapter searches by recipient
    assert icn("ABC123") is None
    assert icn("45") == "0000000000045"


# ---------------------------------------------------------------- helpers
@pytest.fixture
def adapter():
    return load_adapters()[PORTAL]()



def creds(sandbox) -> Credentials:
    a = sandbox.account(PORTAL)
    return Credentials(username=a["username"], password=a["password"])


def truth_claims(sandbox) -> list[dict]:
    return [c for c in sandbox.ground_truth()["claims"] if c["portal"] == PORTAL and c["visible"]]


def pick(claims: list[dict], kind: str, skip: set[str] = frozenset()) -> dict:
    for c in claims:
        if c.get("kind") == kind and c["claim_id"] not in skip:
            return c
    pytest.fail(f"no {kind} claim on {PORTAL}")


def query(c: dict, *, by_number: bool, number: str | None = None) -> ClaimQuery:
    return ClaimQuery(claim_ref=c["pcn"], payer_key=c["payer_id"],
                      payer_claim_number=(number or c["payer_claim_number"]) if by_number else None,
                      member_id=c["member_id"], dos_from=date.fromisoformat(c["dos_from"]),
                      dos_to=date.fromisoformat(c["dos_to"]), billing_npi=c["billing_npi"],
                      billed=Decimal(c["billed"]))


def not_found_query(c: dict) -> ClaimQuery:
    q = query(c, by_number=False)
    return q.model_copy(update={"dos_from": date(2019, 1, 15), "dos_to": date(2019, 1, 15)})


def assert_is_claim(r, c: dict) -> None:
    """The result is claim c's, as the ground truth has it (status, amounts, number) and proves it."""
    def d(x):
        return None if x is None else Decimal(x)

    assert (r.status_category, r.status_code) == (c["status_category"], c["status_code_shown"])
    assert r.payer_claim_number == c["payer_claim_number"]
    assert (r.billed, r.allowed, r.paid) == (d(c["billed"]), d(c.get("allowed")), d(c.get("paid")))
    assert r.shown_member_id == c["member_id"]
    assert (r.shown_dos_from.isoformat(), r.shown_dos_to.isoformat()) == (c["dos_from"], c["dos_to"])
    assert r.shown_billed == Decimal(c["billed"])
    assert normalize_claim_number(r.shown_claim_number) == normalize_claim_number(c["payer_claim_number"])


async def logged_in(signed_in, adapter, pacer: TokenBucket | None = None):
    return await signed_in(adapter, PORTAL, pacer=pacer)  # the module's sign-in, reused


async def leased_lookup(adapter, s, q):
    async with s.lease():
        return await adapter.claim_status(s, q)


# ---------------------------------------------------------------- requests per lookup
async def test_requests_per_lookup_matches_the_portals_counter(sandbox, signed_in, adapter):
    claims = truth_claims(sandbox)
    denied, paid = pick(claims, "denied"), pick(claims, "paid")
    s = await logged_in(signed_in, adapter, pacer=TokenBucket(adapter.rate_limit_per_minute))
    try:
        await leased_lookup(adapter, s, query(paid, by_number=True))  # warm: crosswalk read once
        sandbox.control.post("/control/counters/reset").raise_for_status()
        before = s.counted
        assert_is_claim(await leased_lookup(adapter, s, query(denied, by_number=True)), denied)
        assert_is_claim(await leased_lookup(adapter, s, query(paid, by_number=False)), paid)
        server = sandbox.counters().get("medicaid.counted_requests", 0)
        assert server == 2 * adapter.requests_per_lookup
        assert s.counted - before == server, "counted_requests does not match what the portal counts"
        assert not sandbox.counters().get("medicaid.response_not_ready")
    finally:
        await s.close()


# ---------------------------------------------------------------- sign-in
async def test_a_session_ended_while_signing_in_is_retryable_not_drift(sandbox, pool, adapter):
    """The portal ends the new session before the home page (here: every authenticated page expires it) and
    sends the browser back to its login page with a notice ("Your session has expired..."), no error: a
    retryable SessionExpired the runner signs in again after, not drift that would stop the account."""
    sandbox.faults(None, session_expiry_rate=1.0)
    s = await pool.session_for(adapter, sandbox.url(PORTAL))
    try:
        with pytest.raises(SessionExpired, match="expired") as e:
            await adapter.login(s, creds(sandbox))
        assert e.value.retryable
        sandbox.faults(None, session_expiry_rate=0.0)
        await adapter.login(s, creds(sandbox))  # and a new sign-in passes
        assert await adapter.verify(s)
    finally:
        sandbox.faults(None, session_expiry_rate=0.0)
        await s.close()


# ---------------------------------------------------------------- wrong-thing scenarios
async def test_near_matches_are_not_taken_for_the_claim(sandbox, signed_in, adapter):
    sandbox.faults(None, switches={"medicaid.near_matches": True})
    claims = truth_claims(sandbox)
    s = await logged_in(signed_in, adapter)
    try:
        for kind in ("denied", "paid", "rejected"):
            c = pick(claims, kind)
            assert_is_claim(await leased_lookup(adapter, s, query(c, by_number=False)), c)
        assert sandbox.counters().get("medicaid.decoys_listed", 0) >= 9  # 3 near matches per search
    finally:
        await s.close()


async def test_duplicate_claims_are_ambiguous_by_member_but_found_by_icn(sandbox, signed_in, adapter):
    sandbox.faults(None, switches={"medicaid.duplicate_claims": True})
    c = pick(truth_claims(sandbox), "denied")
    s = await logged_in(signed_in, adapter)
    try:
        with pytest.raises(AmbiguousClaim):
            await leased_lookup(adapter, s, query(c, by_number=False))
        assert sandbox.counters().get("medicaid.decoys_listed", 0) >= 1
        assert_is_claim(await leased_lookup(adapter, s, query(c, by_number=True)), c)
    finally:
        await s.close()


async def test_stale_detail_is_waited_out(sandbox, signed_in, adapter):
    sandbox.faults(None, switches={"medicaid.stale_detail": True})
    claims = truth_claims(sandbox)
    first, second = pick(claims, "paid"), pick(claims, "denied")
    s = await logged_in(signed_in, adapter)
    try:
        assert_is_claim(await leased_lookup(adapter, s, query(first, by_number=True)), first)
        # Claim Detail first shows `first` again (the session's previous claim): the adapter must notice
        assert_is_claim(await leased_lookup(adapter, s, query(second, by_number=True)), second)
        assert_is_claim(await leased_lookup(adapter, s, query(first, by_number=False)), first)
        assert sandbox.counters().get("medicaid.stale_details_served", 0) >= 2
        async with s.lease():  # the page left on screen is the claim read (evidence)
            page = await s.page()
            icn_shown = await page.locator("#ctl00_ContentPlaceHolder1_lblICN").inner_text()
            assert normalize_claim_number(icn_shown) == first["payer_claim_number"]
    finally:
        await s.close()


async def test_reformatted_claim_numbers_are_matched_by_their_key(sandbox, signed_in, adapter):
    sandbox.faults(None, switches={"medicaid.icn_format": True})
    c = pick(truth_claims(sandbox), "denied")
    n = c["payer_claim_number"]
    s = await logged_in(signed_in, adapter)
    try:
        for held in (n, f"{n[:4]}-{n[4:8]}-{n[8:]}", f" 00{n} "):  # how a PMS might hold it
            q = query(c, by_number=True, number=held)
            r = await leased_lookup(adapter, s, q)
            assert_is_claim(r, c)
            assert unproven(q, r, adapter.claim_number_key) is None  # the runner's own check agrees
            assert r.shown_claim_number != n  # as printed: "ICN 226 ..."
        r = await leased_lookup(adapter, s, query(c, by_number=False))
        assert_is_claim(r, c)
        other = pick(truth_claims(sandbox), "paid")
        with pytest.raises((ClaimMismatch, ClaimNotFound)):  # another claim's number with this claim's data
            await leased_lookup(adapter, s, query(c, by_number=True, number=other["payer_claim_number"]))
    finally:
        await s.close()


# ---------------------------------------------------------------- lookups in flight on one session
def mix(sandbox) -> list[tuple[ClaimQuery, dict | None]]:
    claims = truth_claims(sandbox)
    denied, paid, rejected = pick(claims, "denied"), pick(claims, "paid"), pick(claims, "rejected")
    other_denied = pick(claims, "denied", {denied["claim_id"]})
    items = [(query(denied, by_number=True), denied), (query(paid, by_number=False), paid),
             (query(rejected, by_number=False), rejected), (not_found_query(paid), None),
             (query(other_denied, by_number=False), other_denied), (query(paid, by_number=True), paid),
             (query(pick(claims, "in_process"), by_number=True), pick(claims, "in_process")),
             (query(pick(claims, "partial"), by_number=False), pick(claims, "partial"))]
    return items


async def run_in_flight(adapter, s, items):
    sem = asyncio.Semaphore(adapter.max_in_flight)
    peak = busy = 0

    async def one(q):
        nonlocal peak, busy
        async with sem:
            busy += 1
            peak = max(peak, busy)
            try:
                return await leased_lookup(adapter, s, q)
            except Exception as e:  # noqa: BLE001 - compared below
                return e
            finally:
                busy -= 1

    out = await asyncio.gather(*(one(q) for q, _ in items))
    return out, peak


async def test_lookups_in_flight_on_one_session_match_ground_truth(sandbox, signed_in, adapter):
    assert adapter.max_in_flight > 1
    items = mix(sandbox)
    s = await logged_in(signed_in, adapter, pacer=TokenBucket(adapter.rate_limit_per_minute))
    try:
        results, peak = await run_in_flight(adapter, s, items)
        assert peak == adapter.max_in_flight
        for (q, c), r in zip(items, results, strict=True):
            if c is None:
                assert isinstance(r, ClaimNotFound), repr(r)
            else:
                assert not isinstance(r, Exception), f"{q.claim_ref}: {r!r}"
                assert_is_claim(r, c)
                assert unproven(q, r, adapter.claim_number_key) is None
        assert s.blocked == []
        assert len({id(p) for p in s.context.pages}) <= adapter.max_in_flight + 1
        assert sandbox.counters().get("medicaid.sessions_ended_elsewhere", 0) == 0
        assert not sandbox.counters().get("medicaid.csrf_rejected")
    finally:
        await s.close()


async def test_all_wrong_thing_switches_on_never_attribute_another_claims_status(sandbox, signed_in, adapter):
    sandbox.faults(None, switches={name: True for name in WRONG_THING_SWITCHES})
    items = mix(sandbox)
    s = await logged_in(signed_in, adapter, pacer=TokenBucket(adapter.rate_limit_per_minute))
    try:
        results, _ = await run_in_flight(adapter, s, items)
        wrong, right = [], 0
        for (q, c), r in zip(items, results, strict=True):
            if isinstance(r, Exception):
                expected_errors = (ClaimNotFound,) if c is None else (AmbiguousClaim, ClaimMismatch)
                assert isinstance(r, expected_errors), f"{q.claim_ref}: {r!r}"
                continue
            assert c is not None, "a result for a claim that is not on file"
            try:
                assert_is_claim(r, c)
                right += 1
            except AssertionError:
                wrong.append(q.claim_ref)
        assert wrong == [], "results attributed to the wrong claim"
        assert right >= 3  # the searches by ICN are unambiguous even with duplicates listed
        counters = sandbox.counters()
        assert counters.get("medicaid.decoys_listed", 0) > 0
        assert counters.get("medicaid.stale_details_served", 0) > 0
    finally:
        await s.close()
