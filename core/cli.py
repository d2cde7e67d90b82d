"""portal-agent command line (typer + rich)."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.config import get_settings
from core.logging import configure

app = typer.Typer(help="portal-agent: reads payer portals for claim status, denials, auths and enrollment.",
                  no_args_is_help=True)
console = Console()
PROFILES = ("off", "realistic", "faulty")


def _sandbox_ports(port_base: int | None) -> dict[str, int]:
    s = get_settings().sandbox
    if port_base is None:
        return {"control": s.control_port, "clearinghouse": s.clearinghouse_port,
                "commercial": s.commercial_port, "medicaid": s.medicaid_port}
    if port_base == 0:
        return dict.fromkeys(("control", "clearinghouse", "commercial", "medicaid"), 0)
    return {"control": port_base, "clearinghouse": port_base + 1, "commercial": port_base + 2,
            "medicaid": port_base + 3}


def _check_profile(profile: str | None) -> None:
    if profile is not None and profile not in PROFILES:
        raise typer.BadParameter(f"must be one of {', '.join(PROFILES)}", param_hint="--profile")


@app.command()
def sandbox(
    seed: int = typer.Option(None, help="world seed (default from settings)"),
    size: int = typer.Option(None, min=1, help="number of claims"),
    accounts: int = typer.Option(None, min=1, help="demo accounts per portal"),
    profile: str = typer.Option(None, help="fault profile: off | realistic | faulty"),
    port_base: int = typer.Option(None, help="control on BASE, portals on BASE+1..3; 0 = free ports"),
) -> None:
    """Run the three sandbox payer portals and print their URLs and demo logins."""
    from fixtures.server import run  # noqa: TID251 - the sandbox is a demo/test tool, loaded on demand

    _check_profile(profile)
    s = get_settings().sandbox
    run(seed if seed is not None else s.seed, size or s.size, accounts or s.accounts_per_portal,
        profile or s.profile, s.host, _sandbox_ports(port_base), False)


async def _sweep_with_progress(rt, **kw):
    with Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("sweep", total=None)
        try:
            return await rt.runner().sweep(progress=lambda n: bar.advance(task, n),
                                           on_plan=lambda n: bar.update(task, total=n), **kw)
        finally:
            await rt.aclose()


def _summary_table(summary) -> Table:
    t = Table(title=f"sweep run {summary.run_id} ({summary.seconds:.1f} s)")
    t.add_column("outcome")
    t.add_column("claims", justify="right")
    for k in ("checked", "paid", "denied", "rejected", "pending", "failed", "retries", "logins", "relogins",
              "sessions_restored", "blocked_actions"):
        if summary.counts.get(k):
            t.add_row(k, str(summary.counts[k]))
    for k, v in sorted(summary.errors.items()):
        t.add_row(f"error: {k}", str(v))
    return t


def _denials_table(Session) -> Table:
    from store import repo

    with Session() as s:
        rows = repo.open_denials(s)
    by = Counter((d.kind, d.group_code, d.reason_code) for d in rows)
    t = Table(title="open denials and rejections by reason")
    for col in ("kind", "group", "reason", "count"):
        t.add_column(col)
    for (kind, group, reason), n in sorted(by.items(), key=lambda x: -x[1]):
        t.add_row(kind, group or "-", reason, str(n))
    return t


@app.command()
def demo(
    size: int = typer.Option(None, min=1, help="claims in the sandbox world"),
    profile: str = typer.Option("off", help="sandbox fault profile: off | realistic | faulty"),
    serve: bool = typer.Option(False, help="keep the sandbox running after the sweep (Ctrl-C to stop)"),
) -> None:
    """The main job: sandbox portals + migrate + onboard claims and accounts + one sweep + summary."""
    from agent.runtime import Runtime
    from core.demo import SandboxProcess, compare_with_truth, onboard

    _check_profile(profile)
    configure("WARNING")
    settings = get_settings().model_copy()
    settings.data_dir = settings.data_dir / "demo"
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # the demo starts from a clean store each time
    settings.database_url = ""
    size = size or settings.sandbox.size
    with SandboxProcess(size=size, seed=settings.sandbox.seed, profile=profile) as sb:
        for portal in ("clearinghouse", "commercial", "medicaid"):
            console.print(f"sandbox {portal:14} {sb.urls[portal]}/")
        rt = Runtime.start(settings)
        counts = onboard(rt.Session, rt.vault, sb.control, sb.urls)
        console.print(f"store: {settings.resolved_database_url()}  onboarded {counts['claims']} claims, "
                      f"{counts['accounts']} portal accounts")
        # onboarding backfill: every tracked claim is checked once, due or not
        from store import repo

        with rt.Session() as s:
            ids = repo.claim_ids(s)
        summary = asyncio.run(_sweep_with_progress(rt, claim_ids=ids, trigger="onboarding"))
        console.print(_summary_table(summary))
        console.print(_denials_table(rt.Session))
        cmp = compare_with_truth(rt.Session, sb.control)
        ok = cmp["carc_sets_match"] and cmp["status_matches"] == cmp["checked"]
        console.print(f"ground truth: {cmp['status_matches']}/{cmp['checked']} statuses match; denied claims "
                      f"found {cmp['found_denied_claims']} of {cmp['truth_denied_claims']}; CARC sets "
                      f"{'match' if cmp['carc_sets_match'] else 'DIFFER'} {cmp['found_carcs']}")
        if serve:
            console.print("sandbox still running; logins: GET " + sb.urls["control"] + "/control/accounts")
            try:
                sb.proc.wait()
            except KeyboardInterrupt:
                pass
        if not ok:
            raise typer.Exit(1)


@app.command()
def sweep(portal: str = typer.Option(None, help="only this portal key")) -> None:
    """Sweep every due claim (all portals, or one)."""
    from agent.runtime import Runtime

    configure("WARNING")
    rt = Runtime.start(get_settings())
    summary = asyncio.run(_sweep_with_progress(rt, portal_key=portal, trigger="cli"))
    console.print(_summary_table(summary))


@app.command()
def check(claim_id: str = typer.Argument(..., help="the claim's id in the PMS (external id)")) -> None:
    """Check one claim now (on demand), due or not."""
    from agent.runtime import Runtime
    from store import repo
    from store.models import Claim

    configure("WARNING")
    rt = Runtime.start(get_settings())
    with rt.Session() as s:
        ids = repo.claim_ids(s, external_id=claim_id)
    if not ids:
        asyncio.run(rt.aclose())
        raise typer.BadParameter(f"no tracked claim with id {claim_id!r}", param_hint="CLAIM_ID")
    summary = asyncio.run(_sweep_with_progress(rt, claim_ids=ids, trigger="on_demand"))
    console.print(_summary_table(summary))
    with rt.Session() as s:
        c = s.get(Claim, ids[0])
        console.print(f"{claim_id}: status {c.status_category}/{c.status_code} fresh as of {c.fresh_as_of}"
                      + (f" (last error: {c.last_error})" if c.last_error else ""))


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt stored credentials and sessions under the newest key of PORTAL_AGENT_VAULT_KEYS."""
    from agent.runtime import Runtime
    from store import accounts

    rt = Runtime.start(get_settings())
    with rt.Session() as s:
        n = accounts.rotate_all(s, rt.vault)
        s.commit()
    asyncio.run(rt.aclose())
    console.print(f"re-encrypted {n} portal accounts under the newest key")


@app.command()
def serve() -> None:
    """Run the scheduler (sweeps on the configured schedules). Exactly one scheduler per database."""
    from agent.runtime import Runtime
    from agent.scheduler import serve_forever

    configure("INFO")
    settings = get_settings()
    rt = Runtime.start(settings)  # migrate before the job store touches the database
    asyncio.run(rt.aclose())
    console.print(f"scheduler: {settings.schedules}")
    asyncio.run(serve_forever(settings.resolved_database_url(), settings.schedules))


if __name__ == "__main__":
    app()
