"""bench.sweep: a tiny real run (2 claims per portal, faults off) of the naive baseline and the agent's
sweep, and the ground-truth checker on readings that must not pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import percentile
from bench.sweep import PORTALS, agent_checks, claims_mix, extra_requests, naive_checks, pick_claims, pick_mix

REPO = Path(__file__).resolve().parents[2]

TRUTH = {"C1": {"claim_id": "C1", "pcn": "P1", "status_category": "F2", "status_code": "65",
                "status_code_shown": "65", "billed": "120.00", "payer_claim_number": "BMH123"}}


def test_naive_check_refuses_wrong_or_missing_readings():
    good = {"claim_id": "C1", "portal": "clearinghouse", "ok": True, "status_label": "Finalized - Denial",
            "billed": "$120.00", "claim_number": "BMH123"}
    assert naive_checks([good], TRUTH) == {"C1": "ok"}
    assert naive_checks([{**good, "status_label": "Finalized - Payment"}], TRUTH) == {"C1": "wrong status"}
    assert naive_checks([{**good, "status_label": "Paid!"}], TRUTH) == {"C1": "wrong status"}
    assert naive_checks([{**good, "billed": "$12.00"}], TRUTH) == {"C1": "wrong billed"}
    assert naive_checks([{**good, "claim_number": "BMH124"}], TRUTH) == {"C1": "wrong claim number"}
    assert naive_checks([{**good, "ok": False, "error": "TimeoutError: x"}], TRUTH) == {"C1": "failed: TimeoutError"}


def test_agent_check_needs_category_and_code():
    row = {"pcn": "P1", "status_category": "F2", "status_code": "65", "last_error": None}
    by_pcn = {"P1": TRUTH["C1"]}
    assert agent_checks([row], by_pcn) == {"C1": "ok"}
    assert agent_checks([{**row, "status_code": "1"}], by_pcn) == {"C1": "wrong status"}
    assert agent_checks([{**row, "status_category": None, "last_error": "PortalDrift"}], by_pcn) == {
        "C1": "failed: PortalDrift"}
    # a portal that shows no status code for a denial: the agent stores none, and that is right
    hidden = {"P1": {**TRUTH["C1"], "status_code_shown": None}}
    assert agent_checks([{**row, "status_code": None}], hidden) == {"C1": "ok"}
    assert agent_checks([row], hidden) == {"C1": "wrong status"}  # a code the page never showed: a guess


def test_claims_mix_in_proportion_to_the_limits():
    lim = {"clearinghouse": 40.0, "commercial": 24.0, "medicaid": 45.0}
    # every portal swept at its limit finishes together: n_p / limit_p is the same for all
    assert claims_mix(45, "limit", lim) == {"clearinghouse": 40, "commercial": 24, "medicaid": 45}
    assert claims_mix(30, "limit", lim) == {"clearinghouse": 27, "commercial": 16, "medicaid": 30}
    assert claims_mix(1, "limit", lim) == {"clearinghouse": 1, "commercial": 1, "medicaid": 1}
    assert claims_mix(7, "equal", lim) == {p: 7 for p in PORTALS}
    # a portal without a known limit: no proportion to keep
    assert claims_mix(7, "limit", {**lim, "commercial": None}) == {p: 7 for p in PORTALS}


def test_extra_requests_are_the_clearinghouse_claims_whose_codes_card_sends_to_the_remittance_viewer():
    """The bench's per-claim rule, checked claim by claim against what the portal's codes card renders
    (fixtures/clearinghouse/templates/card_codes.html: the remittance viewer link for a payer that returns no
    reasons with claim status, once the claim is adjudicated)."""
    from fixtures.clearinghouse.labels import claim_view
    from fixtures.world.world import World

    world = World(7, 500)
    gt = world.ground_truth()
    payers = {p["id"]: p for p in gt["payers"]}
    needs = {c["claim_id"]: extra_requests(c, payers) for c in gt["claims"]}
    viewer = {cid: int(v["remit_viewer_only"] and v["adjudicated"])
              for cid, v in ((c["claim_id"], claim_view(world, world.claims[c["claim_id"]]))
                             for c in gt["claims"] if c["portal"] == "clearinghouse")}
    assert sum(viewer.values()) > 10  # the world has such claims
    assert {cid: needs[cid] for cid in viewer} == viewer
    assert all(needs[c["claim_id"]] == 0 for c in gt["claims"] if c["portal"] != "clearinghouse")
    # the mix in proportion to each portal's limit for its own claims: the clearinghouse's is lower than
    # its plain limit (some of its claims need 7 requests), so it gets fewer claims than the plain mix gives
    plain = {"clearinghouse": 40.0, "commercial": 24.0, "medicaid": 45.0}
    counts, claims = pick_mix(gt, 30, "limit", plain)
    assert counts["medicaid"] == 30  # the portal with the highest limit gets the claims asked for
    assert counts["commercial"] == round(30 * plain["commercial"] / plain["medicaid"])
    first = [c for c in pick_claims(gt, claims_mix(30, "limit", plain)) if c["portal"] == "clearinghouse"]
    extra = sum(needs[c["claim_id"]] for c in first)
    assert extra > 0
    assert counts["clearinghouse"] == round(30 * (40 * 6 / (6 + extra / len(first))) / 45) < 27
    assert len(claims) == sum(counts.values())


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 21)], 95) == 19.0


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_bench_sweep_smoke(tmp_path):
    out = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "bench.sweep", "--claims", "2", "--mix", "equal", "--profile", "off",
                        "--json", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rep = json.loads(out.read_text())
    assert rep["config"]["claims_per_portal"] == {p: 2 for p in PORTALS}
    assert rep["config"]["faults"]["error_rate"] == 0
    for run in ("naive", "agent"):
        f = rep["runs"][run]
        assert set(f["per_portal"]) == set(PORTALS)
        for p, v in f["per_portal"].items():
            # every claim was compared with the sandbox's ground truth, and matched it
            assert v["claims"] == 2 and v["checked_ok"] == 2, (run, p, v)
            assert v["counted_requests_per_claim"] > 0 and v["challenges"] == 0 and v["lockouts"] == 0
            assert v["claims_per_min"] > 0
            if run == "agent":  # the time after the account signed in is part of the whole sweep's
                assert v["claims_per_min_after_sign_in"] >= v["claims_per_min"] and v["sign_in_s"] > 0
        o = f["overall"]
        assert o["claims"] == 6 and o["checked_ok"] == 6
        assert o["cpu_s"] > 0 and o["peak_rss_mb"] > 50 and o["wall_s"] > 0 and o["logins"] >= 3
    assert rep["runs"]["naive"]["overall"]["logins"] == 6  # one per claim
    for p in (*PORTALS, "overall"):
        assert rep["limits"][p]["limit_claims_per_min"] > 0
        assert rep["ratios"][p]["agent_over_naive"] > 0 and rep["ratios"][p]["agent_over_limit"] > 0
    assert "agent vs naive" in r.stdout and "naive baseline" in r.stdout
