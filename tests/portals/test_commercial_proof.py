"""The commercial adapter proves what it read (issue 10) and runs several lookups at once on one session
(issue 9). Real Chromium against the sandbox portal, driven as the agent drives it (BrowserPool sessions,
`session.lease()` per lookup); every result is compared with the sandbox's ground truth."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest

from agent.pacing import TokenBucket
from core.claims import ClaimQuery, ClaimStatusResult
from core.errors import AmbiguousClaim, ClaimMismatch, ClaimNotFound, PortalDrift
from portals.commercial import mapping as M
from portals.commercial.adapter import CommercialAdapter

P = "commercial"
WRONG_THING_SWITCHES = ("near_matches", "resubmitted_twins", "stale_detail", "stale_cards",
                        "formatted_claim_numbers")


# ---------------------------------------------------------------- claim-number normalization (unit)
@pytest.mark.parametrize(("text", "canonical"), [
    ("UX4LUPN4MD", "UX4LUPN4MD"),
    ("ux4lupn4md", "UX4LUPN4MD"),
    ("NSH-UX4L-UPN4-MD", "UX4LUPN4MD"),  # the portal's printed form
    ("nsh ux4l upn4 md", "UX4LUPN4MD"),
    ("NSH#UX4LUPN4MD", "UX4LUPN4MD"),
    ("  UX4L-UPN4.MD ", "UX4LUPN4MD"),
    ("00UX4LUPN4MD", "UX4LUPN4MD"),  # zero padding (the payer's alphabet has no 0)
    ("NSHABCDEFG", "NSHABCDEFG"),  # NSH without a separator is part of the number
    ("\u2014", ""), ("", ""), (None, ""),
])
def test_normalize_claim_number(text, canonical):
    assert M.normalize_claim_number(text) == canonical


def test_normalize_claim_number_refuses_other_text():
    with pytest.raises(PortalDrift):
        M.normalize_claim_number("UX4L*UPN4MD")
    assert M.normalize_claim_number("NSH-UX4L-UPN4-MD") != M.normalize_claim_number("NSH-UX4L-UPN4-ME")


# ---------------------------------------------------------------- helpers

class World:
    """The ground truth of the commercial portal's claims, with the lookups' queries."""

    def __init__(self, sandbox) -> None:
        gt = sandbox.ground_truth()
        self.members = {m["member_id"]: m for m in gt["members"]}
        self.claims = [c for c in gt["claims"] if c["portal"] == P and c["visible"]]
        self.by_pcn = {c["pcn"]: c for c in self.claims}

    def kind(self, kind: str) -> dict:
        return next(c for c in self.claims if c["kind"] == kind)

    def query(self, c: dict, *, by_number: bool, number: str | None = None, **over) -> ClaimQuery:
        m = self.members[c["member_id"]]
        fields = dict(claim_ref=c["pcn"], payer_key=c["payer_id"],
                      payer_claim_number=(number or c["payer_claim_number"]) if by_number else None,
                      member_id=c["member_id"], patient_dob=date.fromisoformat(m["dob"]),
                      dos_from=date.fromisoformat(c["dos_from"]), dos_to=date.fromisoformat(c["dos_to"]),
                      billing_npi=c["billing_npi"], billed=Decimal(c["billed"]))
        fields.update(over)
        return ClaimQuery(**fields)


def assert_is(r: ClaimStatusResult, c: dict) -> None:
    """The result is the claim `c` (by the ground truth), with the proof the page showed."""
    assert r.claim_ref == c["pcn"]
    assert (r.status_category, r.status_code) == (c["status_category"], c["status_code_shown"])
    assert r.payer_claim_number == c["payer_claim_number"]
    assert r.billed == Decimal(c["billed"]) and r.shown_billed == Decimal(c["billed"])
    assert r.shown_member_id == c["member_id"]
    assert (r.shown_dos_from, r.shown_dos_to) == (date.fromisoformat(c["dos_from"]), date.fromisoformat(c["dos_to"]))
    assert M.normalize_claim_number(r.shown_claim_number) == (c["payer_claim_number"] or "")
    assert r.paid == (Decimal(c["paid"]) if c.get("paid") is not None else None)
    assert r.check_number == c.get("check_number")


async def shown_key_and_title(session) -> tuple[str | None, str]:
    page = await session.page()
    detail = page.locator(".claim-detail")
    return await detail.get_attribute("data-claim-key"), await detail.locator(".detail-title").inner_text()


def switches(sandbox, **on: bool) -> None:
    sandbox.faults(None, switches={f"{P}.{k}": v for k, v in on.items()})


async def logged_in(signed_in, adapter, pacer=None):
    return await signed_in(adapter, P, pacer=pacer)  # the module's sign-in, reused


# ---------------------------------------------------------------- counted requests
async def test_requests_per_lookup_and_counted_requests_match_the_portal(sandbox, signed_in):
    adapter, w = CommercialAdapter(), World(sandbox)
    s = await logged_in(signed_in, adapter, pacer=TokenBucket(10_000))
    try:
        paid, denied = w.kind("paid"), w.kind("denied")
        async with s.lease():
            await adapter.claim_status(s, w.query(w.kind("in_process"), by_number=True))  # warm the tab
            sandbox.control.post("/control/counters/reset").raise_for_status()
            s.counted = 0
            assert_is(await adapter.claim_status(s, w.query(paid, by_number=True)), paid)
            assert_is(await adapter.claim_status(s, w.query(denied, by_number=False)), denied)
        server = sandbox.counters().get(f"{P}.counted_requests", 0)
        assert server == 2 * adapter.requests_per_lookup
        assert s.counted == server  # counted_requests matches exactly what the portal counts
        assert s.blocked == []
    finally:
        await s.close()


# ---------------------------------------------------------------- scenarios
def same_visit_groups(w: World) -> list[list[dict]]:
    groups = defaultdict(list)
    for c in w.claims:
        groups[(c["member_id"], c["dos_from"], c["dos_to"])].append(c)
    return [g for g in groups.values() if len(g) > 1]


async def test_member_search_with_several_claims_picks_the_exact_one(sandbox, signed_in):
    """Same member and dates of service, other billed amount or provider: each query gets its own claim."""
    adapter, w = CommercialAdapter(), World(sandbox)
    groups = same_visit_groups(w)
    assert groups, "the world has no member with two claims on one visit"
    s = await logged_in(signed_in, adapter)
    try:
        async with s.lease():
            for group in groups[:2]:
                for c in group:
                    r = await adapter.claim_status(s, w.query(c, by_number=False))
                    assert_is(r, c)
                    key, _ = await shown_key_and_title(s)
                    assert key is not None  # the page is left on the claim read
                    assert (await (await s.page()).locator(".claim-overview dd").nth(0).inner_text()) == \
                        (c["payer_claim_number"] or "\u2014")
                # the same visit, but a billed amount none of them has: a mismatch, never a neighbour
                other = group[0]
                with pytest.raises(ClaimMismatch):
                    await adapter.claim_status(s, w.query(other, by_number=False, billed=Decimal("1.23")))
                with pytest.raises((ClaimMismatch, AmbiguousClaim)):
                    await adapter.claim_status(s, w.query(other, by_number=False, billing_npi="1999999999"))
    finally:
        await s.close()


def near_pair(w: World) -> tuple[dict, dict]:
    """Two claims of one member whose dates of service are within 30 days but do not overlap."""
    by_member = defaultdict(list)
    for c in w.claims:
        by_member[c["member_id"]].append(c)
    for cs in by_member.values():
        for a in cs:
            for b in cs:
                da, db = date.fromisoformat(a["dos_from"]), date.fromisoformat(b["dos_from"])
                if a is not b and a["payer_claim_number"] and 0 < (db - da).days <= 25 \
                        and date.fromisoformat(a["dos_to"]) < db:
                    return a, b
    pytest.fail("no member with two claims within 30 days")


async def test_near_matches_are_never_taken_for_the_claim(sandbox, signed_in):
    adapter, w = CommercialAdapter(), World(sandbox)
    a, b = near_pair(w)
    switches(sandbox, near_matches=True)
    s = await logged_in(signed_in, adapter)
    try:
        async with s.lease():
            assert_is(await adapter.claim_status(s, w.query(a, by_number=False)), a)
            assert_is(await adapter.claim_status(s, w.query(b, by_number=False)), b)
            # a visit between them that has no claim: the portal lists the neighbours only
            gap = date.fromisoformat(a["dos_to"]) + timedelta(days=1)
            if gap < date.fromisoformat(b["dos_from"]):
                with pytest.raises((ClaimMismatch, ClaimNotFound)):
                    await adapter.claim_status(s, w.query(a, by_number=False, dos_from=gap, dos_to=gap))
    finally:
        await s.close()


async def test_resubmitted_twin_makes_member_search_ambiguous(sandbox, signed_in):
    adapter, w = CommercialAdapter(), World(sandbox)
    denied = w.kind("denied")
    switches(sandbox, resubmitted_twins=True)
    s = await logged_in(signed_in, adapter)
    try:
        async with s.lease():
            with pytest.raises(AmbiguousClaim):  # same member, dates, billed and NPI, two claim numbers
                await adapter.claim_status(s, w.query(denied, by_number=False))
            assert_is(await adapter.claim_status(s, w.query(denied, by_number=True)), denied)
            paid = w.kind("paid")  # no twin: the member search still finds it
            assert_is(await adapter.claim_status(s, w.query(paid, by_number=False)), paid)
    finally:
        await s.close()


@pytest.mark.parametrize("switch", ["stale_detail", "stale_cards"])
async def test_stale_detail_never_stands_in_for_the_new_claim(sandbox, signed_in, switch):
    adapter, w = CommercialAdapter(), World(sandbox)
    switches(sandbox, **{switch: True})
    order = [w.kind(k) for k in ("paid", "denied", "partial", "rejected", "zero_pay", "overturned")]
    s = await logged_in(signed_in, adapter)
    try:
        async with s.lease():
            for c in order:
                by_number = bool(c["payer_claim_number"])
                r = await adapter.claim_status(s, w.query(c, by_number=by_number))
                assert_is(r, c)
                _, title = await shown_key_and_title(s)
                assert title == (f"Claim {c['payer_claim_number']}" if by_number else "Returned claim")
    finally:
        await s.close()


async def test_reformatted_claim_numbers(sandbox, signed_in):
    adapter, w = CommercialAdapter(), World(sandbox)
    switches(sandbox, formatted_claim_numbers=True)
    s = await logged_in(signed_in, adapter)
    try:
        async with s.lease():
            for kind in ("paid", "denied"):
                c = w.kind(kind)
                n = c["payer_claim_number"]
                for held in (n, f" {n[:5].lower()} {n[5:]} "):  # as the PMS holds it, tidy or not
                    r = await adapter.claim_status(s, w.query(c, by_number=True, number=held))
                    assert_is(r, c)
                    assert r.shown_claim_number == f"NSH-{n[:4]}-{n[4:8]}-{n[8:]}"  # as printed
            other = w.kind("partial")
            with pytest.raises(ClaimMismatch):  # the number of one claim, the member and dates of another
                await adapter.claim_status(s, w.query(w.kind("paid"), by_number=True,
                                                      number=other["payer_claim_number"]))
    finally:
        await s.close()


# ---------------------------------------------------------------- lookups in flight
def mixed_queries(w: World) -> list[tuple[ClaimQuery, dict | None]]:
    out: list[tuple[ClaimQuery, dict | None]] = []
    for i, kind in enumerate(("denied", "paid", "rejected", "partial", "in_process", "zero_pay", "overturned")):
        c = w.kind(kind)
        out.append((w.query(c, by_number=bool(c["payer_claim_number"]) and i % 2 == 0), c))
    for group in same_visit_groups(w)[:2]:
        out += [(w.query(c, by_number=False), c) for c in group]
    lost = w.kind("paid")
    out.append((w.query(lost, by_number=False, claim_ref="NOT-ON-FILE", dos_from=date(2019, 1, 15),
                        dos_to=date(2019, 1, 15)), None))
    return out


async def run_in_flight(adapter, s, queries) -> list[ClaimStatusResult | Exception]:
    sem = asyncio.Semaphore(adapter.max_in_flight)
    peak = [0, 0]

    async def one(q):
        async with sem, s.lease():
            peak[0] += 1
            peak[1] = max(peak)
            try:
                r = await adapter.claim_status(s, q)
                key, title = await shown_key_and_title(s)  # the lease's page shows the claim read
                assert key is not None and title.endswith(r.shown_claim_number or "Returned claim")
                return r
            except (AmbiguousClaim, ClaimMismatch, ClaimNotFound) as e:
                return e
            finally:
                peak[0] -= 1

    results = await asyncio.gather(*(one(q) for q, _ in queries))
    assert peak[1] == adapter.max_in_flight
    return results


async def test_lookups_in_flight_on_one_session_match_ground_truth(sandbox, signed_in):
    adapter, w = CommercialAdapter(), World(sandbox)
    assert adapter.max_in_flight > 1
    # paced as the agent paces the account (the portal challenges above its limit)
    s = await logged_in(signed_in, adapter, pacer=TokenBucket(adapter.rate_limit_per_minute))
    try:
        queries = mixed_queries(w)
        results = await run_in_flight(adapter, s, queries)
        for (q, c), r in zip(queries, results, strict=True):
            if c is None:
                assert isinstance(r, ClaimNotFound)
            else:
                assert isinstance(r, ClaimStatusResult), (q.claim_ref, r)
                assert_is(r, c)
        assert s.blocked == []
        assert len(s.context.pages) >= adapter.max_in_flight  # one tab per lookup in flight

        # every wrong-thing switch on: errors are allowed, a result of another claim is not
        switches(sandbox, **dict.fromkeys(WRONG_THING_SWITCHES, True))
        for p in s.context.pages:  # the SPA reads its switches when the app loads
            await p.goto(sandbox.url(P) + "/#/claims")
        results = await run_in_flight(adapter, s, queries)
        wrong, answered = [], 0
        for (q, c), r in zip(queries, results, strict=True):
            if isinstance(r, ClaimStatusResult):
                answered += 1
                if c is None:
                    wrong.append(q.claim_ref)
                    continue
                try:
                    assert_is(r, c)
                except AssertionError:
                    wrong.append(q.claim_ref)
        assert wrong == []
        assert answered >= len(queries) // 2  # the switches make some lookups ambiguous, not all
        assert s.blocked == []
        assert not sandbox.counters().get(f"{P}.challenges")
    finally:
        await s.close()
