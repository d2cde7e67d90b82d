"""Sweep benchmark (issue 9): the naive day-one script vs portal-agent's sweep, in ONE run on ONE sandbox
world, both measured the same way (process-tree CPU, peak RSS, wall), both checked against ground truth.

    .venv/bin/python -m bench.sweep [--claims N] [--accounts K] [--profile realistic|faulty|off]
                                    [--scaling] [--skip-naive] [--on-demand] [--json OUT]

See bench/README.md for what every figure means. Internal entry (the agent's own process):
    python -m bench.sweep --agent-child SPEC.json OUT.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psutil

from bench.measure import percentile, run_measured

REPO = Path(__file__).resolve().parent.parent
PORTALS = ("clearinghouse", "commercial", "medicaid")
ORG = "ORG1"
STATE_NAMES = {"FR": "Franklin", "CL": "Columbia"}
NO_FAULTS = {"error_rate": 0.0, "drop_rate": 0.0, "partial_rate": 0.0, "session_expiry_rate": 0.0}


# ---------------------------------------------------------------- the claims and the world
def knows_claim_number(claim_id: str) -> bool:
    """Whether the PMS knows the claim's payer claim number (the demo's onboarding rule)."""
    from portal_agent import demo

    return demo.knows_claim_number(claim_id)


def pick_claims(gt: dict, per_portal: int | dict[str, int], org: str = ORG) -> list[dict]:
    """The first `per_portal` visible claims of one organization behind each portal (claim-id order:
    a deterministic mix of kinds, and of claim-number vs member + DOS searches as the PMS knows them)."""
    npi_org = {p["npi"]: p["org_id"] for p in gt["providers"]}
    out = []
    for portal in PORTALS:
        n = per_portal[portal] if isinstance(per_portal, dict) else per_portal
        mine = sorted((c for c in gt["claims"] if c["visible"] and c["portal"] == portal
                       and npi_org[c["billing_npi"]] == org), key=lambda c: c["claim_id"])
        if len(mine) < n:
            raise SystemExit(f"{portal}: only {len(mine)} claims of {org} in this world; raise the size")
        out += mine[:n]
    return out


def claims_mix(n: int, mix: str, limit_per_account: dict[str, float | None]) -> dict[str, int]:
    """Claims per portal. `equal`: n each. `limit`: n for the portal with the highest limit and the others
    in proportion to their limit, so that every portal swept at its limit finishes at the same moment:
    only then is the sum of the portals' limits the fastest the whole sweep can go (with n each, the
    portal of the lowest limit would finish last and cap the overall figure below the sum)."""
    if mix == "equal" or not all(limit_per_account.values()):
        return {p: n for p in PORTALS}
    top = max(limit_per_account.values())
    return {p: max(1, round(n * limit_per_account[p] / top)) for p in PORTALS}


def limit_per_account(sb) -> dict[str, float | None]:
    """Claims a minute one account of each portal can ever get: the sandbox's rate limit / the fewest
    counted requests a lookup needs (the adapter's declared `requests_per_lookup`)."""
    rates = sb.control.get("/control/faults").json()["rate_limit_per_minute"]
    out = {}
    for p in PORTALS:
        _, rpl = declared(p)
        out[p] = rates[p] / rpl if rates.get(p) and rpl else None
    return out


def limit_per_account_for(per_account: dict[str, float | None], claims: list[dict], gt: dict
                          ) -> dict[str, float | None]:
    """`limit_per_account` for these very claims: each portal's plain limit scaled by its requests per
    plain lookup over the fewest its claims need on average (`extra_requests`)."""
    needs = extra_needed(claims, gt)
    out = {}
    for p, lim in per_account.items():
        _, rpl = declared(p)
        extra, n = needs.get(p, (0, 0))
        out[p] = lim * rpl / (rpl + extra / n) if lim and rpl and n else lim
    return out


def pick_mix(gt: dict, n: int, mix: str, per_account: dict[str, float | None]) -> tuple[dict[str, int], list[dict]]:
    """Claims per portal and the claims. With `limit`, in proportion to each portal's limit for the claims
    it gets (the plain limit picks them, their own needs then set the proportion: one step)."""
    counts = claims_mix(n, mix, per_account)
    if mix == "limit":
        counts = claims_mix(n, mix, limit_per_account_for(per_account, pick_claims(gt, counts), gt))
    return counts, pick_claims(gt, counts)


def world_size(per_portal: int) -> int:
    # ORG1 holds ~11% of each portal's visible claims (seed 7): keep a margin
    return max(500, per_portal * 14)


def naive_spec(gt: dict, claims: list[dict], urls: dict, accounts: list[dict]) -> dict:
    from core.config import get_settings

    members = {m["member_id"]: m for m in gt["members"]}
    payers = {p["id"]: p for p in gt["payers"]}
    org = next(o for o in gt["organizations"] if o["id"] == ORG)
    first = {p: next(a for a in accounts if a["portal"] == p) for p in PORTALS}
    return {
        "executable_path": get_settings().browser.launch_path(),  # the agent's browser: same for both
        "portals": {p: {"url": urls[p], "username": a["username"], "password": a["password"],
                        "totp_secret": a["totp_secret"]} for p, a in first.items()},
        "org": {"id": org["id"], "name": org["name"], "state": STATE_NAMES.get(org["state"], org["state"])},
        "claims": [{"claim_id": c["claim_id"], "pcn": c["pcn"], "portal": c["portal"], "payer_id": c["payer_id"],
                    "payer_name": payers[c["payer_id"]]["name"],
                    "payer_claim_number": c["payer_claim_number"] if knows_claim_number(c["claim_id"]) else None,
                    "member_id": c["member_id"], "dob": members[c["member_id"]]["dob"],
                    "dos_from": c["dos_from"], "dos_to": c["dos_to"], "billing_npi": c["billing_npi"],
                    "alt_form": payers[c["payer_id"]]["form"] != "standard"} for c in claims],
    }


# ---------------------------------------------------------------- the agent's process
async def _agent_child(spec: dict, out_path: str) -> None:
    from agent.pacing import reset_pacers
    from core.config import get_settings
    from core.logging import configure
    from portal_agent.demo import add_account, add_world
    from portal_agent.runtime import Runtime
    from store import repo
    from store.models import CheckFailure, Claim, Payer

    configure("WARNING")
    reset_pacers()
    settings = get_settings().model_copy(update={"data_dir": Path(spec["data_dir"]), "database_url": ""})
    rt = Runtime.start(settings)
    with rt.Session() as s:
        orgs, _ = add_world(s, spec["ground_truth"], only=set(spec["claim_ids"]), org_ids={spec["org"]})
        for a in spec["accounts"]:
            add_account(s, rt.vault, orgs[spec["org"]], a, spec["urls"])
        s.commit()
        ids = repo.claim_ids(s)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    try:
        summary = await rt.runner().sweep(claim_ids=ids, trigger="bench")
    finally:
        sweep_s = time.monotonic() - t0
        await rt.aclose()
    with rt.Session() as s:
        claims = {c.id: c for c in s.query(Claim).all()}
        payer_portal = {p.id: p.portal_key for p in s.query(Payer).all()}
        failures: dict[str, list[str]] = {}
        for f in s.query(CheckFailure).order_by(CheckFailure.id):
            failures.setdefault(claims[f.claim_id].external_id, []).append(f.error_type)
        rows = [{"pcn": c.external_id, "portal": payer_portal[c.payer_id], "status_category": c.status_category,
                 "status_code": c.status_code, "last_error": c.last_error,
                 "finished_s": ((c.last_checked_at.replace(tzinfo=UTC) if c.last_checked_at.tzinfo is None
                                 else c.last_checked_at) - started).total_seconds() if c.last_checked_at else None,
                 "errors": failures.get(c.external_id, [])} for c in claims.values()]
    durations = getattr(summary, "durations", None)
    out = {"sweep_s": sweep_s, "summary_s": summary.seconds, "counts": dict(summary.counts),
           "errors": dict(summary.errors), "timings": dict(getattr(summary, "timings", {})),
           "needs_attention": len(summary.accounts_needing_attention),
           "durations": ({claims[k].external_id: v for k, v in durations.items() if k in claims}
                         if durations else None),
           "claims": rows}
    Path(out_path).write_text(json.dumps(out))


# ---------------------------------------------------------------- one measured run
def counters(sb) -> dict:
    return sb.control.get("/control/counters").json()


def unlock_all(sb) -> list[str]:
    """Lift locks and challenges between runs (each run starts from clean accounts); returns the locked."""
    locked = []
    for a in sb.control.get("/control/accounts").json():
        if a["locked"]:
            locked.append(f"{a['portal']}:{a['username']}")
        sb.control.post(f"/control/accounts/{a['portal']}/{a['username']}/unlock").raise_for_status()
    return locked


def sandbox_cpu_s(sb) -> float:
    """CPU seconds the sandbox (portals' server) has used so far: it shares the machine with the run."""
    try:
        p = psutil.Process(sb.proc.pid)
        return sum(q.cpu_times().user + q.cpu_times().system for q in [p, *p.children(recursive=True)])
    except (psutil.Error, AttributeError):
        return 0.0


def run_naive(sb, spec: dict, work: Path, log) -> dict:
    src, dst = work / "naive_in.json", work / "naive_out.json"
    src.write_text(json.dumps(spec))
    before, sb_cpu = counters(sb), sandbox_cpu_s(sb)
    with open(work / "naive.log", "w") as lf:
        usage = run_measured([sys.executable, "-m", "bench.naive", str(src), str(dst)], cwd=str(REPO),
                             stdout=lf, stderr=subprocess.STDOUT)
    after = counters(sb)
    usage.cpu_by_kind["(sandbox server)"] = sandbox_cpu_s(sb) - sb_cpu
    out = json.loads(dst.read_text()) if dst.exists() else {"logins": 0, "results": []}
    log(f"naive: exit {usage.returncode}, {usage.wall_s:.0f} s wall")
    return {"usage": usage.__dict__, "before": before, "after": after, "locked": unlock_all(sb), **out}


def run_agent(sb, gt: dict, claims: list[dict], accounts: list[dict], work: Path, log, tag: str = "agent") -> dict:
    data = work / f"{tag}_data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    spec = {"data_dir": str(data), "org": ORG, "urls": sb.urls, "ground_truth": gt, "accounts": accounts,
            "claim_ids": [c["claim_id"] for c in claims]}
    src, dst = work / f"{tag}_in.json", work / f"{tag}_out.json"
    src.write_text(json.dumps(spec))
    before, sb_cpu = counters(sb), sandbox_cpu_s(sb)
    with open(work / f"{tag}.log", "w") as lf:
        usage = run_measured([sys.executable, "-m", "bench.sweep", "--agent-child", str(src), str(dst)],
                             cwd=str(REPO), stdout=lf, stderr=subprocess.STDOUT)
    after = counters(sb)
    usage.cpu_by_kind["(sandbox server)"] = sandbox_cpu_s(sb) - sb_cpu
    out = json.loads(dst.read_text()) if dst.exists() else None
    log(f"{tag}: exit {usage.returncode}, {usage.wall_s:.0f} s wall")
    return {"usage": usage.__dict__, "before": before, "after": after, "locked": unlock_all(sb),
            "data_dir": str(data), "out": out}


# ---------------------------------------------------------------- ground truth and figures
def _label_tables() -> dict[str, dict[str, str]]:
    from fixtures.clearinghouse.labels import LABEL_TO_CATEGORY as CH
    from fixtures.commercial.labels import STATUS_CATEGORY_BY_LABEL as CO
    from fixtures.medicaid.codes import LABEL_TO_CATEGORY as MD

    return {"clearinghouse": CH, "commercial": CO, "medicaid": MD}


def _money(s: str | None) -> Decimal | None:
    if not s:
        return None
    try:
        return Decimal(s.replace("$", "").replace(",", "").strip())
    except ArithmeticError:
        return None


def naive_checks(results: list[dict], truth: dict[str, dict]) -> dict[str, str]:
    """claim_id -> "ok" or why the naive script's reading is not a checked result."""
    tables = _label_tables()
    verdict = {}
    for r in results:
        t = truth[r["claim_id"]]
        if not r["ok"]:
            verdict[r["claim_id"]] = f"failed: {r['error'].split(':')[0]}"
            continue
        cat = tables[r["portal"]].get(r.get("status_label") or "")
        if cat != t["status_category"]:
            verdict[r["claim_id"]] = "wrong status"
        elif _money(r.get("billed")) != Decimal(t["billed"]):
            verdict[r["claim_id"]] = "wrong billed"
        elif t["payer_claim_number"] and r.get("claim_number") != t["payer_claim_number"]:
            verdict[r["claim_id"]] = "wrong claim number"
        else:
            verdict[r["claim_id"]] = "ok"
    return verdict


def agent_checks(rows: list[dict], truth_by_pcn: dict[str, dict]) -> dict[str, str]:
    verdict = {}
    for r in rows:
        t = truth_by_pcn[r["pcn"]]
        if not r["status_category"]:
            verdict[t["claim_id"]] = f"failed: {r['last_error'] or 'no result'}"
        elif (r["status_category"], r["status_code"]) != (t["status_category"], t["status_code_shown"]):
            verdict[t["claim_id"]] = "wrong status"
        else:
            verdict[t["claim_id"]] = "ok"
    return verdict


def declared(portal: str) -> tuple[int | None, int | None]:
    """(rate_limit_per_minute, requests_per_lookup) the adapter declares (None where it does not yet)."""
    import importlib

    try:
        mod = importlib.import_module(f"portals.{portal}.adapter")
    except Exception:  # noqa: BLE001 - an adapter being edited by someone else must not stop the bench
        return None, None
    from portals.base import registry

    cls = registry().get(portal) or next((v for v in vars(mod).values()
                                          if isinstance(v, type) and getattr(v, "key", None) == portal), None)
    return getattr(cls, "rate_limit_per_minute", None), getattr(cls, "requests_per_lookup", None)


def _fmt(x, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def figures(kind: str, run: dict, claims: list[dict], truth: dict[str, dict], accounts_locked: list[str],
            accounts: int = 1) -> dict:
    """Per portal + overall figures of one run (naive or agent)."""
    n_by_portal = Counter(c["portal"] for c in claims)
    portal_of = {c["claim_id"]: c["portal"] for c in claims}
    before, after = run["before"], run["after"]

    def diff(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)

    per: dict[str, dict] = {}
    if kind == "naive":
        verdict = naive_checks(run["results"], truth)
        secs = {r["claim_id"]: r["seconds"] for r in run["results"]}
        span = {p: sum(s for cid, s in secs.items() if portal_of[cid] == p) for p in PORTALS}
        total_span = sum(span.values())
        logins = Counter(r["portal"] for r in run["results"])
        retries: Counter = Counter()
        summary_counts: dict = {"logins": run["logins"]}
    else:
        out = run["out"] or {"claims": [], "durations": None, "counts": {}, "errors": {}, "sweep_s": None}
        by_pcn = {t["pcn"]: t for t in truth.values()}
        verdict = agent_checks(out["claims"], by_pcn)
        pcn_to_id = {t["pcn"]: cid for cid, t in truth.items()}
        secs = {pcn_to_id[k]: v for k, v in (out["durations"] or {}).items()}
        span = {}
        for p in PORTALS:
            ends = [r["finished_s"] for r in out["claims"] if r["portal"] == p and r["finished_s"] is not None]
            span[p] = max(ends) if ends else (out["sweep_s"] or 0)
        total_span = out.get("sweep_s") or max(span.values() or [0])
        # an account's sign-in (its portal's accounts sign in at once: their mean) before its first lookup
        sign_in = {p: (out.get("timings") or {}).get(f"sign_in_s.{p}", 0.0) / accounts for p in PORTALS}
        logins = Counter()
        retries = Counter()
        summary_counts = out["counts"]
    for p in PORTALS:
        n = n_by_portal[p]
        ids = [c["claim_id"] for c in claims if c["portal"] == p]
        ok = sum(1 for i in ids if verdict.get(i) == "ok")
        failed = Counter(v for i in ids if (v := verdict.get(i, "missing")) != "ok")
        ps = [secs[i] for i in ids if i in secs]
        per[p] = {"claims": n, "checked_ok": ok, "not_checked": dict(failed),
                  "claims_per_min": (60 * n / span[p]) if span.get(p) else None,
                  "claims_per_min_after_sign_in": (60 * n / (span[p] - sign_in[p]))
                  if kind == "agent" and span.get(p) and span[p] > sign_in[p] else None,
                  "sign_in_s": round(sign_in[p], 1) if kind == "agent" else None,
                  "p50_s": percentile(ps, 50), "p95_s": percentile(ps, 95),
                  "counted_requests_per_claim": diff(f"{p}.counted_requests") / n if n else None,
                  "counted_per_claim_by_route": {
                      k.split(".counted_by_route.", 1)[1]: round(diff(k) / n, 2)
                      for k in sorted(set(run["after"]) | set(run["before"]))
                      if k.startswith(f"{p}.counted_by_route.") and diff(k)} if n else {},
                  "challenges": diff(f"{p}.challenges"),
                  "lockouts": sum(1 for a in accounts_locked if a.startswith(p + ":")),
                  "logins": logins.get(p) if kind == "naive" else None}
    n_all = len(claims)
    after_sign_in = None
    if kind == "agent" and total_span:  # the sweep's time less the sign-in of the portal that finished last
        last = max(PORTALS, key=lambda p: span.get(p) or 0)
        if total_span > sign_in[last]:
            after_sign_in = 60 * n_all / (total_span - sign_in[last])
    u = run["usage"]
    allsecs = list(secs.values())
    overall = {"claims": n_all, "checked_ok": sum(v["checked_ok"] for v in per.values()),
               "claims_per_min": 60 * n_all / total_span if total_span else None,
               "claims_per_min_after_sign_in": after_sign_in,
               "p50_s": percentile(allsecs, 50), "p95_s": percentile(allsecs, 95),
               "cpu_s_per_claim": u["cpu_s"] / n_all if n_all else None, "cpu_s": u["cpu_s"],
               "peak_rss_mb": u["peak_rss_mb"], "wall_s": u["wall_s"], "sweep_s": total_span,
               "load_avg": u.get("load_avg"),
               "cpu_s_per_claim_by_process": {k: round(v / n_all, 3) for k, v in sorted(
                   (u.get("cpu_by_kind") or {}).items(), key=lambda kv: -kv[1])} if n_all else {},
               "logins": summary_counts.get("logins", 0) + summary_counts.get("relogins", 0),
               "retries": summary_counts.get("retries", 0) + sum(retries.values()),
               "counted_requests_per_claim": sum(diff(f"{p}.counted_requests") for p in PORTALS) / n_all,
               "challenges": sum(v["challenges"] for v in per.values()),
               "lockouts": len(accounts_locked),
               "not_checked": dict(sum((Counter(v["not_checked"]) for v in per.values()), Counter())),
               "durations_reported": bool(allsecs)}
    if kind == "agent" and run["out"]:
        overall["errors"] = run["out"]["errors"]
        overall["step_seconds"] = {k: round(v, 1) for k, v in (run["out"].get("timings") or {}).items()}
    return {"per_portal": per, "overall": overall}


def extra_requests(claim: dict, payers: dict[str, dict]) -> int:
    """Counted requests this claim's lookup needs beyond a plain lookup (the adapter's `requests_per_lookup`),
    from the sandbox's own rules and ground truth, not from what the agent did: the clearinghouse shows the
    reasons of a payer that returns none with claim status (`remit_viewer_only`) only in its remittance
    viewer, once the claim is adjudicated (fixtures/clearinghouse/templates/card_codes.html: "Open the
    remittance viewer"; the viewer is one counted GET /remit, fixtures/clearinghouse/remit.py). No other
    claim of the three portals needs more than a plain lookup. (The viewer's step-up, three requests once
    per login, is a cost of the session, like the sign-in, not of a claim.)"""
    if claim["portal"] == "clearinghouse" and payers[claim["payer_id"]].get("remit_viewer_only") \
            and claim["status_category"].startswith("F"):
        return 1
    return 0


def extra_needed(claims: list[dict], gt: dict) -> dict[str, tuple[int, int]]:
    """Per portal: (requests its claims need beyond plain lookups, in all (`extra_requests`); its claims)."""
    payers = {x["id"]: x for x in gt["payers"]}
    truth = {c["claim_id"]: c for c in gt["claims"]}
    out: dict[str, tuple[int, int]] = {}
    for c in claims:
        extra, n = out.get(c["portal"], (0, 0))
        out[c["portal"]] = (extra + extra_requests(truth[c["claim_id"]], payers), n + 1)
    return out


def limits(sb, per_portal_measured: dict, k: int, claims: list[dict] | None = None,
           gt: dict | None = None) -> dict:
    """Per portal: the most claims a minute `k` accounts can ever get = k x rate limit / requests per claim,
    where requests per claim is the fewest counted requests the lookup of each claim swept needs, averaged
    over those claims (`limit_claims_per_min`); and the same with every claim a plain lookup
    (`limit_plain_claims_per_min`: the adapter's `requests_per_lookup`, the fewest any lookup needs; higher
    than any mix with claims that need more can reach)."""
    faults = sb.control.get("/control/faults").json()
    needs = extra_needed(claims, gt) if claims and gt else {}
    out = {}
    for p in PORTALS:
        rate = faults["rate_limit_per_minute"].get(p)
        dec_rate, rpl = declared(p)
        source = "adapter"
        if not rpl:
            rpl = per_portal_measured[p]["counted_requests_per_claim"]
            source = "measured"
        extra, n = needs.get(p, (0, 0))
        per_claim = (rpl + extra / n) if n and rpl else rpl
        out[p] = {"rate_limit_per_minute": rate, "adapter_rate_limit": dec_rate, "requests_per_lookup": rpl,
                  "requests_per_lookup_from": source, "accounts": k,
                  "extra_requests_needed": extra, "fewest_requests_per_claim": per_claim,
                  "limit_claims_per_min": (rate / per_claim * k) if rate and per_claim else None,
                  "limit_plain_claims_per_min": (rate / rpl * k) if rate and rpl else None}
    out["overall"] = {key: sum(v[key] or 0 for v in out.values())
                      for key in ("limit_claims_per_min", "limit_plain_claims_per_min")}
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def ratios(report: dict) -> dict:
    runs, lim = report["runs"], report["limits"]

    def cpm(run: str, p: str):
        if run not in runs:
            return None
        return (runs[run]["overall"] if p == "overall" else runs[run]["per_portal"][p])["claims_per_min"]

    def after(p: str):
        if "agent" not in runs:
            return None
        return (runs["agent"]["overall"] if p == "overall" else runs["agent"]["per_portal"][p]).get(
            "claims_per_min_after_sign_in")

    return {p: {"agent_over_naive": ratio(cpm("agent", p), cpm("naive", p)),
                "agent_over_limit": ratio(cpm("agent", p), lim[p]["limit_claims_per_min"]),
                "agent_over_limit_after_sign_in": ratio(after(p), lim[p]["limit_claims_per_min"]),
                "agent_over_plain_limit": ratio(cpm("agent", p), lim[p].get("limit_plain_claims_per_min")),
                "agent_over_plain_limit_after_sign_in": ratio(after(p), lim[p].get("limit_plain_claims_per_min"))}
            for p in (*PORTALS, "overall")}


# ---------------------------------------------------------------- printing
def print_run(title: str, f: dict) -> None:
    print(f"\n== {title}")
    hdr = (f"{'portal':14}{'claims':>7}{'ok':>5}{'cl/min':>8}{'p50 s':>7}{'p95 s':>7}{'req/cl':>8}"
           f"{'chall':>6}{'lock':>5}  not checked")
    print(hdr)
    for p, v in f["per_portal"].items():
        print(f"{p:14}{v['claims']:>7}{v['checked_ok']:>5}{_fmt(v['claims_per_min']):>8}{_fmt(v['p50_s']):>7}"
              f"{_fmt(v['p95_s']):>7}{_fmt(v['counted_requests_per_claim']):>8}{v['challenges']:>6}"
              f"{v['lockouts']:>5}  {v['not_checked'] or ''}")
    o = f["overall"]
    print(f"{'overall':14}{o['claims']:>7}{o['checked_ok']:>5}{_fmt(o['claims_per_min']):>8}{_fmt(o['p50_s']):>7}"
          f"{_fmt(o['p95_s']):>7}{_fmt(o['counted_requests_per_claim']):>8}{o['challenges']:>6}{o['lockouts']:>5}"
          f"  {o['not_checked'] or ''}")
    print(f"  CPU {o['cpu_s']:.1f} s ({_fmt(o['cpu_s_per_claim'], 2)} s/claim), peak RSS {o['peak_rss_mb']:.0f} MB, "
          f"wall {o['wall_s']:.1f} s (sweep {o['sweep_s']:.1f} s), machine load {_fmt(o.get('load_avg'))}, logins {o['logins']}, retries {o['retries']}"
          + ("" if o["durations_reported"] else ", per-claim durations not reported")
          + (f", errors {o['errors']}" if o.get("errors") else ""))
    for p, v in f["per_portal"].items():
        if v.get("counted_per_claim_by_route"):
            print(f"  {p} counted requests per claim by route: {v['counted_per_claim_by_route']}")
    if o.get("cpu_s_per_claim_by_process"):
        print(f"  CPU s/claim by process: {o['cpu_s_per_claim_by_process']}")
    if o.get("step_seconds"):
        print(f"  agent time by step, summed over lookups in flight: {o['step_seconds']}")


def print_comparison(report: dict) -> None:
    lim, runs = report["limits"], report["runs"]
    print("\n== agent vs naive and vs the portals' limit (claims/min)")
    print(f"{'portal':14}{'naive':>8}{'agent':>8}{'limit':>8}{'a/naive':>9}{'a/limit':>9}{'signed in':>10}"
          f"{'a/limit':>9}{'plain':>8}{'a/plain':>9}  fewest requests a claim")
    print(f"{'':14}{'':>8}{'':>8}{'':>8}{'':>9}{'':>9}{'cl/min':>10}{'signed in':>9}{'limit':>8}{'':>9}")
    for p in (*PORTALS, "overall"):
        a = runs["agent"]["per_portal"][p] if p != "overall" else runs["agent"]["overall"]
        nv = (runs["naive"]["per_portal"][p] if p != "overall" else runs["naive"]["overall"]) \
            if "naive" in runs else {"claims_per_min": None}
        lp = lim[p]
        src = (f"{_fmt(lp.get('fewest_requests_per_claim'), 2)} = {_fmt(lp.get('requests_per_lookup'))} "
               f"({lp.get('requests_per_lookup_from')}) + {lp.get('extra_requests_needed')} remittance reads"
               if p != "overall" else "")
        print(f"{p:14}{_fmt(nv['claims_per_min']):>8}{_fmt(a['claims_per_min']):>8}"
              f"{_fmt(lp['limit_claims_per_min']):>8}{_fmt(ratio(a['claims_per_min'], nv['claims_per_min']), 2):>9}"
              f"{_fmt(ratio(a['claims_per_min'], lp['limit_claims_per_min']), 2):>9}"
              f"{_fmt(a.get('claims_per_min_after_sign_in')):>10}"
              f"{_fmt(ratio(a.get('claims_per_min_after_sign_in'), lp['limit_claims_per_min']), 2):>9}"
              f"{_fmt(lp.get('limit_plain_claims_per_min')):>8}"
              f"{_fmt(ratio(a['claims_per_min'], lp.get('limit_plain_claims_per_min')), 2):>9}  {src}")
    print("  limit = rate limit / the fewest counted requests each claim swept needs (a plain lookup, + 1 for a\n"
          "  clearinghouse claim whose reasons only the remittance viewer shows); plain limit = every claim a plain\n"
          "  lookup (the adapter's requests_per_lookup), which a mix with such claims cannot reach")


# ---------------------------------------------------------------- on-demand check (CLI) timing
def _clear_saved_sessions(data_dir: str) -> None:
    code = ("from core.config import get_settings; from portal_agent.runtime import Runtime; from store import accounts; "
            "from store.models import PortalAccount; import asyncio\n"
            "rt = Runtime.start(get_settings())\n"
            "with rt.Session() as s:\n"
            "    [accounts.save_state(rt.vault, a, None) for a in s.query(PortalAccount)]\n"
            "    s.commit()\n"
            "asyncio.run(rt.aclose())\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PORTAL_AGENT_DATA_DIR": data_dir},
                   check=True, capture_output=True)


def on_demand(data_dir: str, claims: list[dict], truth: dict[str, dict], runs: int, log) -> dict:
    """`portal-agent check PCN` end to end (process start to exit, result stored) on the agent run's store:
    warm = the saved session the sweep left; cold = saved sessions deleted first (a full login)."""
    exe = str(REPO / ".venv" / "bin" / "portal-agent")
    if not Path(exe).exists():
        exe = shutil.which("portal-agent") or exe
    env = {**os.environ, "PORTAL_AGENT_DATA_DIR": data_dir, "COLUMNS": "200"}
    out: dict = {}
    for p in PORTALS:
        mine = [c for c in claims if c["portal"] == p]
        res = {"warm": [], "cold": [], "failed": 0}
        for mode in ("warm", "cold"):
            for i in range(runs):
                c = mine[i % len(mine)]
                if mode == "cold":
                    _clear_saved_sessions(data_dir)
                t0 = time.monotonic()
                r = subprocess.run([exe, "check", c["pcn"]], cwd=REPO, env=env, capture_output=True, text=True)
                dt = time.monotonic() - t0
                ok = r.returncode == 0 and f"status {truth[c['claim_id']]['status_category']}/" in r.stdout
                if ok:
                    res[mode].append(dt)
                else:
                    res["failed"] += 1
        out[p] = {"warm_p50_s": percentile(res["warm"], 50), "cold_p50_s": percentile(res["cold"], 50),
                  "warm_runs": res["warm"], "cold_runs": res["cold"], "failed": res["failed"]}
        log(f"on-demand {p}: warm p50 {_fmt(out[p]['warm_p50_s'])} s, cold p50 {_fmt(out[p]['cold_p50_s'])} s")
    return out


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=30,
                    help="claims of the portal with the highest limit (--mix limit) or of each portal (--mix equal)")
    ap.add_argument("--mix", default="limit", choices=["limit", "equal"],
                    help="limit = claims per portal in proportion to its limit (all finish together at the limit)")
    ap.add_argument("--accounts", type=int, default=1, help="portal accounts per portal for the agent")
    ap.add_argument("--profile", default="realistic", choices=["realistic", "faulty", "off"],
                    help="realistic = latency only (injected errors set to 0); faulty = the faulty preset")
    ap.add_argument("--scaling", action="store_true", help="also the agent alone at 1, 2, 4 accounts per portal")
    ap.add_argument("--scaling-claims", type=int, default=40, help="--claims of the scaling runs")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--on-demand", action="store_true", help="time `portal-agent check` warm and cold")
    ap.add_argument("--on-demand-runs", type=int, default=3)
    ap.add_argument("--json", help="write the whole report here")
    ap.add_argument("--agent-child", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.agent_child:
        asyncio.run(_agent_child(json.loads(Path(a.agent_child[0]).read_text()), a.agent_child[1]))
        return 0

    from portal_agent.demo import SandboxProcess

    def log(msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    n_accounts = max(a.accounts, 4 if a.scaling else 1)
    size = world_size(max(a.claims, a.scaling_claims if a.scaling else 0))
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    report: dict = {"config": {"claims": a.claims, "mix": a.mix, "accounts": a.accounts, "profile": a.profile,
                               "world_size": size, "seed": 7, "org": ORG, "cpus": os.cpu_count()},
                    "runs": {}}
    try:
        with SandboxProcess(size=size, seed=7, profile="off", accounts=n_accounts) as sb:
            if a.profile == "realistic":
                sb.control.put("/control/faults", json={"profile": "realistic", "overrides": NO_FAULTS}).raise_for_status()
            elif a.profile == "faulty":
                sb.control.put("/control/faults", json={"profile": "faulty", "overrides": {}}).raise_for_status()
            report["config"]["faults"] = {k: v for k, v in sb.control.get("/control/faults").json().items()
                                          if k in ("name", "latency_ms", "error_rate", "drop_rate", "partial_rate",
                                                   "session_expiry_rate", "rate_limit_per_minute")}
            gt = sb.control.get("/control/ground-truth").json()
            truth = {c["claim_id"]: c for c in gt["claims"]}
            all_accounts = sb.control.get("/control/accounts").json()
            per_account = limit_per_account(sb)
            mix, claims = pick_mix(gt, a.claims, a.mix, per_account)
            report["config"]["claims_per_portal"] = mix
            report["config"]["claim_number_searches"] = sum(
                1 for c in claims if c["payer_claim_number"] and knows_claim_number(c["claim_id"]))
            log(f"sandbox up: {len(claims)} claims of {ORG} ({report['config']['claim_number_searches']} by claim "
                f"number), profile {a.profile}, work dir {work}")

            def accounts_for(k: int) -> list[dict]:
                return [x for p in PORTALS for x in [y for y in all_accounts if y["portal"] == p][:k]]

            if not a.skip_naive:
                log("naive baseline running")
                nv = run_naive(sb, naive_spec(gt, claims, sb.urls, all_accounts), work, log)
                report["runs"]["naive"] = figures("naive", nv, claims, truth, nv["locked"])
                print_run("naive baseline (fresh context + login per claim, sequential)", report["runs"]["naive"])
            # --scaling --skip-naive: the scaling table alone (its K = 1 run is the plain agent run)
            if not (a.scaling and a.skip_naive):
                log(f"agent sweep running ({a.accounts} account(s) per portal)")
                ag = run_agent(sb, gt, claims, accounts_for(a.accounts), work, log)
                report["runs"]["agent"] = figures("agent", ag, claims, truth, ag["locked"], a.accounts)
                print_run(f"portal-agent sweep ({a.accounts} account(s) per portal)", report["runs"]["agent"])
                report["limits"] = limits(sb, report["runs"]["agent"]["per_portal"], a.accounts, claims, gt)
                report["ratios"] = ratios(report)
                print_comparison(report)
                if a.on_demand:
                    log("on-demand checks (portal-agent check) running")
                    report["on_demand"] = on_demand(ag["data_dir"], claims, truth, a.on_demand_runs, log)
            if a.scaling:
                report["scaling"] = scaling(sb, gt, truth, all_accounts,
                                            pick_mix(gt, a.scaling_claims, a.mix, per_account)[0], work, log)
    finally:
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=1, default=str))
        shutil.rmtree(work, ignore_errors=True)
    return 0


def scaling(sb, gt: dict, truth: dict, all_accounts: list[dict], per_portal: dict[str, int], work: Path,
            log) -> list[dict]:
    claims = pick_claims(gt, per_portal)
    rows = []
    for k in (1, 2, 4):
        accts = [x for p in PORTALS for x in [y for y in all_accounts if y["portal"] == p][:k]]
        log(f"scaling: agent with {k} account(s) per portal, {len(claims)} claims")
        ag = run_agent(sb, gt, claims, accts, work, log, tag=f"scale{k}")
        f = figures("agent", ag, claims, truth, ag["locked"], k)
        lim = limits(sb, f["per_portal"], k, claims, gt)
        o = f["overall"]
        per_ratio = {p: ratio(f["per_portal"][p]["claims_per_min"], lim[p]["limit_claims_per_min"]) for p in PORTALS}
        busy = o["cpu_s"] / (o["wall_s"] * (os.cpu_count() or 2)) if o["wall_s"] else None
        binds = []
        for p, r in per_ratio.items():
            if r is not None and r >= 0.8:
                binds.append(f"{p}: portal limit ({r:.2f})")
        if busy is not None and busy >= 0.8:
            binds.append(f"CPU ({busy:.0%} of {os.cpu_count()} cores)")
        total_mb = psutil.virtual_memory().total / 2**20
        if o["peak_rss_mb"] >= 0.8 * total_mb:
            binds.append(f"memory ({o['peak_rss_mb']:.0f} of {total_mb:.0f} MB)")
        rows.append({"accounts": k, "claims": len(claims), "claims_per_min": o["claims_per_min"],
                     "claims_per_min_after_sign_in": o["claims_per_min_after_sign_in"],
                     "after_sign_in_over_limit": ratio(o["claims_per_min_after_sign_in"],
                                                       lim["overall"]["limit_claims_per_min"]),
                     "cpu_s_per_claim": o["cpu_s_per_claim"], "peak_rss_mb": o["peak_rss_mb"],
                     "cpu_busy": busy, "checked_ok": o["checked_ok"], "challenges": o["challenges"],
                     "agent_over_limit": {**per_ratio, "overall": ratio(o["claims_per_min"],
                                                                      lim["overall"]["limit_claims_per_min"])},
                     "per_portal_claims_per_min": {p: f["per_portal"][p]["claims_per_min"] for p in PORTALS},
                     "binds": binds})
    print("\n== scaling (agent alone, same claims, fresh store each)")
    print(f"{'K':>3}{'cl/min':>8}{'CPU s/cl':>10}{'CPU busy':>10}{'RSS MB':>8}{'ok':>5}{'a/limit':>9}{'signed in':>10}"
          "  per portal cl/min | binds")
    prev = None
    for r in rows:
        growth = ratio(r["claims_per_min"], prev) if prev else None
        prev = r["claims_per_min"]
        binds = r["binds"] or ["nothing at 80%: latency per lookup x lookups in flight (agent-side concurrency)"]
        r["growth_vs_previous"] = growth
        print(f"{r['accounts']:>3}{_fmt(r['claims_per_min']):>8}{_fmt(r['cpu_s_per_claim'], 2):>10}"
              f"{_fmt(r['cpu_busy'] * 100 if r['cpu_busy'] is not None else None, 0):>9}%{r['peak_rss_mb']:>8.0f}"
              f"{r['checked_ok']:>5}{_fmt(r['agent_over_limit']['overall'], 2):>9}"
              f"{_fmt(r['after_sign_in_over_limit'], 2):>10}  "
              f"{ {p: round(v, 1) if v else v for p, v in r['per_portal_claims_per_min'].items()} } | {'; '.join(binds)}")
    return rows


if __name__ == "__main__":
    sys.exit(main())
