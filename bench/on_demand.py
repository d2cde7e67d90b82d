"""On-demand latency, in process (the call the API makes): `SweepRunner.check_now(claim_id)` to a stored
result, per portal, in three situations, on the sandbox's realistic latency (no injected errors):

- joined: while a sweep of the same account runs at full speed (the check joins its logged-in session, and its
  requests go first in the account's pacer);
- warm: no sweep running; the logged-in session of the account's last check is still open in the process
  (`keep_warm_s`, what the API process keeps): the lookup alone;
- restored: no session open (`keep_warm_s` = 0, e.g. a new process): the saved session restored and verified
  (one page), then the lookup;
- cold: no saved session: a full login (password + MFA), then the lookup.

Before each warm, restored and cold check the bench waits until the account's pacer holds its whole burst
again (`_rested`: what the previous timed check spent, refilled; the seconds waited are printed): checks
fired back to back at machine speed would measure the account's rate limit, not one check. The joined
checks are not rested: they run against a sweep that keeps the pacer empty, which is what they measure.

Prints p50/max seconds of each and the issue's bound: 2 x (counted pages per lookup x mean page latency), and
beside it what the portal itself makes every lookup wait beyond its page latency (the sandbox's own
constants: medicaid's inquiry response is ready 2 s after it is submitted; clearinghouse's five detail
cards each "retrieve" 0.1-0.3 s (the portal's script asks for them one after another; the agent reads them
ahead, at once, so a lookup waits for the slowest of five); commercial's four cards 0.15-0.45 s, at once).

    .venv/bin/python -m bench.on_demand [--runs 5] [--portals clearinghouse,commercial,medicaid] [--reserve 5]

`--reserve N` sets `Settings.on_demand_reserve` (agent/pacing.py `standing`): the sweep a joined check runs
beside always leaves N of the account's tokens and places in the portal's minute free, so the check's first N
requests go at once (by default the sweep runs at the limit and the check waits for the tokens it needs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from agent.pacing import existing_pacer
from core.config import Settings
from portal_agent.demo import SandboxProcess, onboard
from portal_agent.runtime import Runtime
from portals import load_adapters
from store import accounts as acct_repo
from store.models import Claim, Payer, PortalAccount, StatusObservation

PORTALS = ("clearinghouse", "commercial", "medicaid")
WARM_S = 600.0
SWEEP_CLAIMS = 20  # the sweep a joined check runs beside: at full speed, the account's pacer at its limit


def portal_wait_s() -> dict[str, float]:
    """Seconds each sandbox portal makes one lookup wait beyond its page latency (means of its constants)."""
    from fixtures.clearinghouse.claims import CARD_DELAY_S as CH_CARD
    from fixtures.clearinghouse.claims import CARDS
    from fixtures.commercial.api import CARD_DELAY_S as CO_CARD
    from fixtures.medicaid.core import RESPONSE_DELAY_S

    def slowest(delays: tuple[float, float], n: int) -> float:  # expected max of n uniform delays at once
        return delays[0] + (delays[1] - delays[0]) * n / (n + 1)

    # clearinghouse: five cards read ahead at once; commercial: its SPA fetches its four cards at once
    # (overview, lines, payments, actions: fixtures/commercial/api.py)
    return {"clearinghouse": slowest(CH_CARD, len(CARDS)), "commercial": slowest(CO_CARD, 4),
            "medicaid": RESPONSE_DELAY_S}


def _claims(rt, portal: str) -> tuple[int, list[int]]:
    """One account of the portal and its organization's claims on that portal."""
    with rt.Session() as s:
        acct = s.scalars(select(PortalAccount).where(PortalAccount.portal_key == portal)
                         .order_by(PortalAccount.id)).first()
        ids = list(s.scalars(select(Claim.id).join(Payer, Payer.id == Claim.payer_id).where(
            Payer.portal_key == portal, Claim.org_id == acct.org_id).order_by(Claim.id)))
    return acct.id, ids


def _forget_session(rt, account_id: int) -> None:
    with rt.Session() as s:
        acct_repo.save_state(rt.vault, s.get(PortalAccount, account_id), None)
        s.commit()


async def _rested(rt, account_id: int) -> float:
    """Wait until the account's pacer holds its whole burst again; returns the seconds waited. A person (or
    the PMS) asks for one claim now and then: the timed check must not pay for the budget the previous
    timed check spent a moment before (checks fired back to back at machine speed are a sweep, and are
    paced as one: commercial's 116 requests a minute give one five-request lookup every 2.6 s)."""
    with rt.Session() as s:
        acct = s.get(PortalAccount, account_id)
        base_url, username = acct.base_url, acct.username
    bucket = existing_pacer(base_url, username)
    if bucket is None:
        return 0.0
    wait = bucket.full_in_s()
    await asyncio.sleep(wait)
    return wait


async def _timed(runner, claim_id: int, returned: list[float] | None = None) -> float:
    """Seconds from the call to the stored result (the issue's measure: what an API caller waits for before
    it can read the result); `returned` gets the seconds until check_now returned (after the run's
    bookkeeping: saved session, account health, run record)."""
    t0 = time.monotonic()
    summary = await runner.check_now(claim_id)
    if summary.counts["checked"] != 1:
        raise RuntimeError(f"on-demand check failed: {dict(summary.errors)}")
    if returned is not None:
        returned.append(time.monotonic() - t0)
    return summary.stored_at[claim_id] - t0


async def run(runs: int, portals: tuple[str, ...] = PORTALS, reserve: int = 0) -> dict:
    out: dict[str, dict] = {}
    with SandboxProcess(size=2000, profile="realistic") as sb, tempfile.TemporaryDirectory() as tmp:
        faults = sb.control.put("/control/faults", json={"profile": "realistic", "overrides": {
            "error_rate": 0, "drop_rate": 0, "partial_rate": 0, "session_expiry_rate": 0}}).json()
        lo, hi = faults["latency_ms"]
        settings = Settings(data_dir=Path(tmp), database_url="", on_demand_reserve=reserve)
        rt = Runtime.start(settings)
        onboard(rt.Session, rt.vault, sb.control, sb.urls)
        adapters = load_adapters()
        for portal in portals:
            account_id, ids = _claims(rt, portal)
            sweep_ids, probe = ids[:SWEEP_CLAIMS], ids[SWEEP_CLAIMS:]
            if len(probe) < 4 * runs + 1:
                raise SystemExit(f"{portal}: {len(probe)} claims to probe, {4 * runs + 1} needed; lower --runs")
            cold, restored, warm, joined = [], [], [], []
            returned: dict[str, list[float]] = {"cold": [], "restored": [], "warm": [], "joined": []}
            settings.keep_warm_s = 0  # no session kept open: each check opens its own
            rested: list[float] = []
            for cid in probe[:runs]:  # cold: a full login each time
                _forget_session(rt, account_id)
                rested.append(await _rested(rt, account_id))
                cold.append(await _timed(rt.runner(), cid, returned["cold"]))
            for cid in probe[runs: 2 * runs]:  # restored: the saved session of the last check
                rested.append(await _rested(rt, account_id))
                restored.append(await _timed(rt.runner(), cid, returned["restored"]))
            settings.keep_warm_s = WARM_S  # the API process: the last check's session stays open
            await _timed(rt.runner(), probe[2 * runs])  # the check that leaves it open (not timed)
            for cid in probe[2 * runs + 1: 3 * runs + 1]:
                rested.append(await _rested(rt, account_id))
                warm.append(await _timed(rt.runner(), cid, returned["warm"]))
            runner = rt.runner()  # joined: during a sweep of the same account, one runner (one process)
            sweep = asyncio.create_task(runner.sweep(portal_key=portal, claim_ids=sweep_ids, trigger="bench"))
            while not runner.checked_live(account_id):  # until the sweep of that account is reading
                await asyncio.sleep(0.1)
                if sweep.done():
                    break
            for cid in probe[3 * runs + 1: 4 * runs + 1]:
                if sweep.done():
                    break
                joined.append(await _timed(runner, cid, returned["joined"]))
            still_running = not sweep.done()
            await sweep
            pages = adapters[portal].requests_per_lookup
            bound = 2 * pages * (lo + hi) / 2 / 1000
            out[portal] = {"cold": cold, "restored": restored, "warm": warm, "joined": joined,
                           "returned": returned, "joined_during_sweep": still_running, "pages_per_lookup": pages,
                           "mean_page_latency_s": (lo + hi) / 2000, "bound_s": bound,
                           "portal_wait_s": portal_wait_s()[portal], "rested_s": rested}
            checked = probe[: 3 * runs + 1 + len(joined)]
            with rt.Session() as s:  # every timed check stored its result
                assert all(s.scalar(select(StatusObservation.id).where(StatusObservation.claim_id == c))
                           for c in checked)
        await rt.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="checks per situation and portal")
    ap.add_argument("--portals", default=",".join(PORTALS), help="comma-separated portal keys")
    ap.add_argument("--reserve", type=int, default=0,
                    help="Settings.on_demand_reserve: requests of each account's budget sweeps leave free for checks")
    args = ap.parse_args()
    portals = tuple(p.strip() for p in args.portals.split(",") if p.strip())
    if unknown := [p for p in portals if p not in PORTALS]:
        ap.error(f"--portals: unknown portal(s) {', '.join(unknown)} (known: {', '.join(PORTALS)})")
    res = asyncio.run(run(args.runs, portals, args.reserve))
    print(f"on_demand_reserve = {args.reserve} (requests of each account's budget a sweep leaves free for checks)")
    for portal, r in res.items():
        print(f"{portal}: waited {statistics.mean(r['rested_s']):.2f} s on average (max {max(r['rested_s']):.2f}) "
              "before a timed check for the account's pacer to refill")
    print("seconds from the call to the stored result (p50, max), and until the call returned (p50: after the run's")
    print("bookkeeping); bound = 2 x pages x mean latency; + portal wait = the bound plus what the portal itself adds")
    print(f"{'portal':14}{'situation':10}{'n':>3}{'p50 s':>8}{'max s':>8}{'returned':>9}{'bound s':>9}{'+ portal wait':>15}")
    for portal, r in res.items():
        for kind in ("joined", "warm", "restored", "cold"):
            xs = r[kind]
            if not xs:
                print(f"{portal:14}{kind:10}{0:>3}")
                continue
            p50 = statistics.median(xs)
            with_wait = r["bound_s"] + r["portal_wait_s"]
            flag = "" if kind in ("cold", "restored") else (
                "  within" if p50 <= r["bound_s"] else "  within bound + wait" if p50 <= with_wait else "  OVER")
            ret = statistics.median(r["returned"][kind])
            print(f"{portal:14}{kind:10}{len(xs):>3}{p50:>8.2f}{max(xs):>8.2f}{ret:>9.2f}{r['bound_s']:>9.2f}{with_wait:>15.2f}"
                  f"{flag}" + ("  (sweep still running)" if kind == "joined" and r["joined_during_sweep"] else ""))


if __name__ == "__main__":
    main()
