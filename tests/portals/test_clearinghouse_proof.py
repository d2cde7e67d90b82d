"""Clearinghouse adapter: proof of what was read (issue 10) and lookups in flight on one session (issue 9).

Real Chromium against the sandbox portal, driven as the agent drives it (BrowserPool sessions, leases).
Every result is compared with the sandbox's ground truth; with the portal's wrong-thing switches on, a
lookup returns the queried claim or a clear claim-level error, never another claim's status.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from agent.pacing import TokenBucket
from core.errors import AmbiguousClaim, ClaimError, ClaimMismatch, ClaimNotFound
from portals.clearinghouse.adapter import ClearinghouseAdapter
from portals.clearinghouse.mapping import claim_number_key
from tests.portals.test_acceptance import actual, expected, query, sample

P = "clearinghouse"
S = "clearinghouse."
WRONG_THING_SWITCHES = ("near_matches", "duplicate_claims", "stale_detail", "claim_number_format")


# ---------------------------------------------------------------- claim-number normalization (no browser)
@pytest.mark.parametrize(("shown", "held"), [
    ("BMH-260810-00002", "BMH26081000002"),  # dashes
    ("KMI 260818 00004", "KMI26081800004"),  # spaces
    ("ICN: 0000CBP26072200001", "CBP26072200001"),  # label + zero padding of a fixed-width field
    ("  bmh26081000002 ", "BMH26081000002"),  # case, surrounding spaces
    ("Claim #: 0012-345", "12345"),
])
def test_claim_number_key_matches_the_same_claim(shown, held):
    assert claim_number_key(shown) == claim_number_key(held)


@pytest.mark.parametrize(("a", "b"), [
    ("BMH26081000002", "BMH26081000003"),
    ("BMH26081000002", "CBP26081000002"),
    ("BMH-260810-00002", "BMH-260810-90002"),
    ("1002", "10020"),
])
def test_claim_number_key_keeps_other_claims_apart(a, b):
    assert claim_number_key(a) != claim_number_key(b)


def test_claim_number_key_of_nothing_is_empty():
    assert claim_number_key(None) == claim_number_key("") == claim_number_key("   ") == ""


# ---------------------------------------------------------------- browser helpers

@pytest.fixture
def adapter():
    return ClearinghouseAdapter()


async def logged_in(signed_in, adapter, *, counted: bool = False, paced: bool = False):
    """Signed in (the module's sign-in reused); `counted`: a fresh sign-in whose requests are counted."""
    pacer = None
    if counted:  # a bucket that never holds: only to count what the adapter declares as counted
        pacer = TokenBucket(10**9)
    elif paced:  # lookups in flight: paced under the portal's limit as the agent does, or the challenge fires
        pacer = TokenBucket(adapter.rate_limit_per_minute, margin=getattr(adapter, "rate_margin", 4))
    return await signed_in(adapter, P, pacer=pacer, fresh=counted)


def switches(sandbox, **on) -> None:
    sandbox.faults(None, switches={S + k: v for k, v in on.items()})


def claims_of(gt: dict, org: str | None = None, **want) -> list[dict]:
    sample(gt, P, "paid")  # fills the member/provider maps query() needs
    npi_org = {p["npi"]: p["org_id"] for p in gt["providers"]}
    return [c for c in gt["claims"] if c["portal"] == P and c["visible"]
            and (org is None or npi_org[c["billing_npi"]] == org)
            and all(c.get(k) == v for k, v in want.items())]


def org_with_most_claims(gt: dict) -> str:
    sample(gt, P, "paid")
    npi_org = {p["npi"]: p["org_id"] for p in gt["providers"]}
    counts: dict[str, int] = {}
    for c in gt["claims"]:
        if c["portal"] == P and c["visible"]:
            o = npi_org[c["billing_npi"]]
            counts[o] = counts.get(o, 0) + 1
    return max(counts, key=counts.get)


def assert_proves(r, c: dict, sandbox) -> None:
    """The result is the queried claim's (ground truth) and carries what the page showed for it."""
    truth = sandbox.claim_truth(c["claim_id"])
    assert actual(r) == expected(truth), c["claim_id"]
    assert r.payer_claim_number == truth["payer_claim_number"]
    assert r.shown_member_id is not None and r.shown_member_id.strip().upper() == truth["member_id"]
    assert (r.shown_dos_from.isoformat(), r.shown_dos_to.isoformat()) == (truth["dos_from"], truth["dos_to"])
    assert r.shown_billed == Decimal(truth["billed"])
    if truth["payer_claim_number"]:
        assert claim_number_key(r.shown_claim_number) == truth["payer_claim_number"]
    else:
        assert r.shown_claim_number is None


async def result_rows(s) -> int:
    """Rows of the results table the lookup's tab shows."""
    frame = (await s.page()).frame_locator("iframe#newBodyFrame")
    return await frame.locator("#results table tbody tr").count()


# ---------------------------------------------------------------- requests per lookup
async def test_counted_requests_per_lookup_and_declared_patterns(sandbox, signed_in, adapter):
    gt = sandbox.ground_truth()
    c1, c2, c3 = [c for c in claims_of(gt, org_with_most_claims(gt), payer_id="BMH") if c["payer_claim_number"]][:3]
    sandbox.control.post("/control/counters/reset").raise_for_status()
    s = await logged_in(signed_in, adapter, counted=True)
    try:
        # the sign-in: the guard counts what the portal counts, the pages its redirects lead to included
        # (Playwright does not route a redirect's next page: the guard debits it from the pacer when sent)
        signed_in = sandbox.counters().get(f"{P}.counted_requests", 0)
        assert signed_in >= 5 and s.counted == signed_in, (s.counted, signed_in)
        await adapter.claim_status(s, query(c1, by_number=True))  # warms the tab's tool (BMH, the org)
        # each warm lookup: the requests the guard counted with the adapter's counted_requests are exactly
        # the ones the portal counted
        per_lookup = []
        for c, by_number in ((c2, True), (c3, False)):
            sandbox.control.post("/control/counters/reset").raise_for_status()
            before, served = s.counted, s.read_ahead_served
            r = await adapter.claim_status(s, query(c, by_number=by_number))
            assert_proves(r, c, sandbox)
            n = sandbox.counters().get(f"{P}.counted_requests", 0)
            assert s.counted - before == n
            # the detail's cards: the first asked by the page's script, the other four read ahead with it
            # and answered from there (the portal still served each once: counted above)
            assert s.read_ahead_served - served == 4
            per_lookup.append(n)
        assert per_lookup == [adapter.requests_per_lookup] * 2, per_lookup
        assert s.blocked == []
    finally:
        await s.close()


# ---------------------------------------------------------------- wrong-thing scenarios
async def test_near_matches_pick_the_exact_claim(sandbox, signed_in, adapter):
    switches(sandbox, near_matches=True)
    gt = sandbox.ground_truth()
    picks = [claims_of(gt, kind=k, payer_id=p)[0] for k, p in (("denied", "BMH"), ("paid", "CBP"), ("rejected", "BMH"))]
    s = await logged_in(signed_in, adapter)
    try:
        for c in picks:
            r = await adapter.claim_status(s, query(c, by_number=False))
            assert_proves(r, c, sandbox)
            assert await result_rows(s) >= 2, "the portal listed no near match: the scenario did not happen"
    finally:
        await s.close()


async def test_duplicate_submission_is_ambiguous_by_member_and_exact_by_number(sandbox, signed_in, adapter):
    switches(sandbox, duplicate_claims=True)
    gt = sandbox.ground_truth()
    c = claims_of(gt, kind="denied", payer_id="BMH")[0]
    s = await logged_in(signed_in, adapter)
    try:
        with pytest.raises(AmbiguousClaim):
            await adapter.claim_status(s, query(c, by_number=False))
        r = await adapter.claim_status(s, query(c, by_number=True))
        assert_proves(r, c, sandbox)
    finally:
        await s.close()


async def test_stale_detail_and_results_are_waited_out(sandbox, signed_in, adapter):
    switches(sandbox, stale_detail=True)
    gt = sandbox.ground_truth()
    cs = [claims_of(gt, kind=k, payer_id="BMH")[0] for k in ("paid", "denied", "partial", "rejected")]
    s = await logged_in(signed_in, adapter)
    try:
        # one tab, one tool: every detail after the first opens over the previous claim's cards
        for i, c in enumerate(cs):
            r = await adapter.claim_status(s, query(c, by_number=bool(c["payer_claim_number"]) and i % 2 == 0))
            assert_proves(r, c, sandbox)
    finally:
        await s.close()


async def test_reformatted_claim_numbers_are_matched_and_shown_as_printed(sandbox, signed_in, adapter):
    switches(sandbox, claim_number_format=True)
    gt = sandbox.ground_truth()
    s = await logged_in(signed_in, adapter)
    try:
        for payer in ("BMH", "KMI", "CBP"):
            c = claims_of(gt, kind="denied", payer_id=payer)[0]
            for by_number in (True, False):
                r = await adapter.claim_status(s, query(c, by_number=by_number))
                assert_proves(r, c, sandbox)
                assert r.shown_claim_number != c["payer_claim_number"], "the number was not reformatted"
    finally:
        await s.close()


async def test_a_claim_that_is_not_the_query_is_a_mismatch(sandbox, signed_in, adapter):
    """The claim number finds a claim whose member/dates/amount are not the query's: refused."""
    gt = sandbox.ground_truth()
    a, b = [c for c in claims_of(gt, kind="paid", payer_id="BMH") if c["payer_claim_number"]][:2]
    q = query(a, by_number=True).model_copy(update={"payer_claim_number": b["payer_claim_number"]})
    s = await logged_in(signed_in, adapter)
    try:
        with pytest.raises(ClaimMismatch):
            await adapter.claim_status(s, q)
    finally:
        await s.close()


# ---------------------------------------------------------------- lookups in flight on one session
def mixed_queries(gt: dict, org: str) -> list[tuple[dict, bool, bool]]:
    """(claim, by_number, exists) for a mix of kinds and payers of one organization, plus not-found."""
    out = []
    for kind in ("denied", "paid", "rejected", "partial", "zero_pay", "in_process"):
        for payer in ("BMH", "KMI", "CBP"):
            cs = claims_of(gt, org, kind=kind, payer_id=payer)
            if cs:
                c = cs[0]
                out.append((c, bool(c["payer_claim_number"]) and len(out) % 2 == 0, True))
    nf = dict(claims_of(gt, org, kind="paid")[1])
    nf["dos_from"] = nf["dos_to"] = "2019-01-15"
    out.append((nf, False, False))
    return out


async def run_in_flight(adapter, s, items) -> list[tuple[dict, bool, bool, object]]:
    sem = asyncio.Semaphore(adapter.max_in_flight)
    active = 0
    peak = 0

    async def one(c, by_number, exists):
        nonlocal active, peak
        async with sem, s.lease():
            active += 1
            peak = max(peak, active)
            try:
                return c, by_number, exists, await adapter.claim_status(s, query(c, by_number=by_number))
            except ClaimError as e:
                return c, by_number, exists, e
            finally:
                active -= 1

    out = await asyncio.gather(*(one(*it) for it in items))
    assert peak == adapter.max_in_flight
    return out


async def test_lookups_in_flight_on_one_session_match_ground_truth(sandbox, signed_in, adapter):
    assert adapter.max_in_flight > 1
    gt = sandbox.ground_truth()
    items = mixed_queries(gt, org_with_most_claims(gt))
    assert len(items) >= 2 * adapter.max_in_flight
    s = await logged_in(signed_in, adapter, paced=True)
    try:
        for c, _, exists, r in await run_in_flight(adapter, s, items):
            if exists:
                assert not isinstance(r, Exception), f"{c['claim_id']}: {r!r}"
                assert_proves(r, c, sandbox)
            else:
                assert isinstance(r, ClaimNotFound)
        assert s.blocked == []
        assert len(s.context.pages) <= adapter.max_in_flight + 1  # tabs are reused, not piled up
    finally:
        await s.close()


async def test_lookups_in_flight_with_every_wrong_thing_switch_never_misattribute(sandbox, signed_in, adapter):
    switches(sandbox, **dict.fromkeys(WRONG_THING_SWITCHES, True))
    gt = sandbox.ground_truth()
    items = mixed_queries(gt, org_with_most_claims(gt))
    items += [(c, not by_number and bool(c["payer_claim_number"]), ok) for c, by_number, ok in items if ok]
    s = await logged_in(signed_in, adapter, paced=True)
    wrong, proven, refused = [], 0, 0
    try:
        for c, by_number, exists, r in await run_in_flight(adapter, s, items):
            if isinstance(r, Exception):
                assert isinstance(r, (AmbiguousClaim, ClaimMismatch, ClaimNotFound)), repr(r)
                refused += 1
                if not exists:
                    assert isinstance(r, ClaimNotFound)
                else:  # only the duplicate submission (listed for every member search) is refused
                    assert not by_number and isinstance(r, AmbiguousClaim), f"{c['claim_id']}: {r!r}"
                continue
            truth = sandbox.claim_truth(c["claim_id"])
            if actual(r) != expected(truth) or r.payer_claim_number != truth["payer_claim_number"]:
                wrong.append(c["claim_id"])
            else:
                assert_proves(r, c, sandbox)
                assert by_number, "a member search listing a duplicate submission cannot prove one claim"
                proven += 1
        assert wrong == [], f"results attributed to the wrong claim: {wrong}"
        assert proven == sum(1 for _, by_number, ok in items if by_number and ok) and refused > 0
        assert s.blocked == [] and sandbox.control.get("/control/writes").json() == []
    finally:
        await s.close()


# ---------------------------------------------------------------- redirected data requests
def test_a_redirected_search_or_card_is_a_lost_session_or_the_challenge_never_drift():
    from core.errors import ChallengePresented, SessionExpired
    from portals.clearinghouse.pages.screens import redirect_error

    # another tab signing the same session in again: the portal sends data requests to a sign-in step
    for where in ("/login", "/mfa", "/orgs", "/announcements"):
        assert isinstance(redirect_error("claim search", where), SessionExpired)
    assert isinstance(redirect_error("claim detail", "/challenge"), ChallengePresented)
    assert redirect_error("claim search", "/somewhere-new") is None  # left to the drift checks
    assert redirect_error("claim search", "") is None  # not redirected (redirect_path of a 200)
