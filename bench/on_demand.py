"""On-demand latency, in process (the call the API makes): `SweepRunner.check_now(claim_id)` to a stored
result, per portal, in three situations, on the sandbox's realistic latency (no injected errors):

- joined: while a sweep of the same account runs (the check joins its logged-in session);
- warm: no sweep running, a saved session restored and verified, then the lookup;
- cold: no saved session: a full login (password + MFA), then the lookup.

Prints p50/max seconds of each and the issue's bound: 2 x (counted pages per lookup x mean page latency).

    .venv/bin/python -m bench.on_demand [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from agent.runtime import Runtime
from core.config import Settings
from core.demo import SandboxProcess, onboard
from portals import load_adapters
from store import accounts as acct_repo
from store.models import Claim, Payer, PortalAccount, StatusObservation

PORTALS = ("clearinghouse", "commercial", "medicaid")


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


async def _timed(runner, claim_id: int) -> float:
    t0 = time.perf_counter()
    summary = await runner.check_now(claim_id)
    if summary.counts["checked"] != 1:
        raise RuntimeError(f"on-demand check failed: {dict(summary.errors)}")
    return time.perf_counter() - t0


async def run(runs: int) -> dict:
    out: dict[str, dict] = {}
    with SandboxProcess(size=300, profile="realistic") as sb, tempfile.TemporaryDirectory() as tmp:
        faults = sb.control.put("/control/faults", json={"profile": "realistic", "overrides": {
            "error_rate": 0, "drop_rate": 0, "partial_rate": 0, "session_expiry_rate": 0}}).json()
        lo, hi = faults["latency_ms"]
        settings = Settings(data_dir=Path(tmp), database_url="")
        rt = Runtime.start(settings)
        onboard(rt.Session, rt.vault, sb.control, sb.urls)
        adapters = load_adapters()
        for portal in PORTALS:
            account_id, ids = _claims(rt, portal)
            sweep_ids, probe = ids[: len(ids) // 2], ids[len(ids) // 2:]
            cold, warm, joined = [], [], []
            for cid in probe[:runs]:  # cold: a full login each time
                _forget_session(rt, account_id)
                cold.append(await _timed(rt.runner(), cid))
            for cid in probe[runs: 2 * runs]:  # warm: the saved session of the last check, restored
                warm.append(await _timed(rt.runner(), cid))
            runner = rt.runner()  # joined: during a sweep of the same account, one runner (one process)
            settings.concurrency_per_account = 1  # a sweep that keeps the account busy the whole time
            sweep = asyncio.create_task(runner.sweep(portal_key=portal, claim_ids=sweep_ids, trigger="bench"))
            while not runner._live.get(account_id) or runner._live[account_id].checked < 1:  # reading
                await asyncio.sleep(0.1)
                if sweep.done():
                    break
            for cid in probe[2 * runs: 3 * runs]:
                if sweep.done():
                    break
                joined.append(await _timed(runner, cid))
            still_running = not sweep.done()
            await sweep
            settings.concurrency_per_account = Settings().concurrency_per_account
            pages = adapters[portal].requests_per_lookup
            bound = 2 * pages * (lo + hi) / 2 / 1000
            out[portal] = {"cold": cold, "warm": warm, "joined": joined, "joined_during_sweep": still_running,
                           "pages_per_lookup": pages, "mean_page_latency_s": (lo + hi) / 2000, "bound_s": bound}
            checked = probe[: 2 * runs + len(joined)]
            with rt.Session() as s:  # every timed check stored its result
                assert all(s.scalar(select(StatusObservation.id).where(StatusObservation.claim_id == c))
                           for c in checked)
        await rt.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="checks per situation and portal")
    args = ap.parse_args()
    res = asyncio.run(run(args.runs))
    print(f"{'portal':14}{'situation':10}{'n':>3}{'p50 s':>8}{'max s':>8}{'bound s':>9}  (bound = 2 x pages x latency)")
    for portal, r in res.items():
        for kind in ("joined", "warm", "cold"):
            xs = r[kind]
            if not xs:
                print(f"{portal:14}{kind:10}{0:>3}")
                continue
            p50 = statistics.median(xs)
            flag = "" if kind == "cold" else ("  within" if p50 <= r["bound_s"] else "  OVER")
            print(f"{portal:14}{kind:10}{len(xs):>3}{p50:>8.2f}{max(xs):>8.2f}{r['bound_s']:>9.2f}{flag}"
                  + ("  (sweep still running)" if kind == "joined" and r["joined_during_sweep"] else ""))


if __name__ == "__main__":
    main()
