"""portal-agent command line (typer + rich)."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

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
    from fixtures.settings import SandboxSettings  # noqa: TID251 - its own settings (PORTAL_AGENT_SANDBOX_)

    _check_profile(profile)
    s = SandboxSettings()
    run(seed if seed is not None else s.seed, size or s.size, accounts or s.accounts_per_portal,
        profile or s.profile, s.host, s.ports(port_base), False)


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
    for k, v in sorted(summary.retries_by_reason.items()):
        t.add_row(f"retries: {k}", str(v))
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


def _reasons_text(reasons: list[dict]) -> str:
    """A case's reasons, each once with how many lines carry it: 'CO-11 x4, CO-97'."""
    from collections import Counter

    from store.cases import reason_label

    counts = Counter(map(reason_label, reasons))
    return ", ".join(k + (f" x{n}" if n > 1 else "") for k, n in counts.items())


def _queue_top(Session, n: int = 5) -> Table:
    """The highest-priority open cases across the organizations' work queues (what billers open first)."""
    from datetime import UTC, datetime

    from store import queue, repo
    from store.workflow.clocks import day_zero

    table = Table(title=f"work queue: the top {n} cases to work next (portal-agent denials --demo)",
                  box=None, pad_edge=False, show_edge=False)
    for col in ("priority", "claim", "payer", "amount", "payer deadline", "owner: why"):
        table.add_column(col, justify="right" if col in ("priority", "amount") else "left",
                         no_wrap=col != "owner: why", overflow="fold")
    with Session() as s:
        orgs = sorted(repo.orgs_by_id(s).values(), key=lambda o: o.external_id)
        rows = [(o, r) for o in orgs for r in queue.work_queue(s, o.id, limit=n).rows]
    for o, r in sorted(rows, key=lambda x: -x[1].case.priority)[:n]:
        c = r.case
        due = min((d for d in (c.appeal_deadline, c.timely_filing_deadline) if d), default=None)
        left = (due - day_zero(datetime.now(UTC), o.time_zone)).days if due else None
        table.add_row(f"{c.priority:,.0f}", r.claim.external_id, r.payer.key, f"{c.amount_cents / 100:,.2f}",
                      "-" if due is None else f"{due:%m-%d} ({'today' if left == 0 else f'{left} d'})",
                      _why(c))
    return table


def _earliest(dates) -> str:
    """The earliest of (label, date) pairs as 'label date', or '-'."""
    due = [(d, what) for what, d in dates if d]
    return f"{min(due)[1]} {min(due)[0]}" if due else "-"


def _why(c) -> str:
    """Who and why: 'coder: coding CO-11 x4', 'front_desk: demographic, rejected 33'."""
    return f"{c.owner_role}: {c.bucket}" + (f", rejected {_reasons_text(c.reasons)}" if c.kind == "rejection"
                                            else f" {_reasons_text(c.reasons)}")


@app.command()
def demo(
    size: int = typer.Option(None, min=1, help="claims in the sandbox world"),
    profile: str = typer.Option("off", help="sandbox fault profile: off | realistic | faulty"),
    serve: bool = typer.Option(False, help="keep the sandbox running after the sweep (Ctrl-C to stop)"),
) -> None:
    """The main job: sandbox portals + migrate + onboard claims and accounts + one sweep + summary."""
    from datetime import UTC, datetime, timedelta

    from fixtures.settings import SandboxSettings  # noqa: TID251 - the sandbox's own settings
    from portal_agent.demo import SandboxProcess, compare_with_truth, onboard
    from portal_agent.runtime import Runtime

    sandbox_settings = SandboxSettings()
    _check_profile(profile)
    configure(get_settings().log_level or "WARNING")
    settings = get_settings().model_copy()
    settings.data_dir = settings.data_dir / "demo"
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # the demo starts from a clean store each time
    settings.database_url = ""
    size = size or sandbox_settings.size
    with SandboxProcess(size=size, seed=sandbox_settings.seed, profile=profile) as sb:
        for portal in ("clearinghouse", "commercial", "medicaid"):
            console.print(f"sandbox {portal:14} {sb.urls[portal]}/")
        rt = Runtime.start(settings)
        counts = onboard(rt.Session, rt.vault, sb.control, sb.urls)
        console.print(f"store: {settings.resolved_database_url()}  onboarded {counts['claims']} claims, "
                      f"{counts['accounts']} portal accounts, {counts['people']} people in billing teams")
        # onboarding backfill: every tracked claim is checked once, due or not
        from store import repo

        with rt.Session() as s:
            ids = repo.claim_ids(s)
        summary = asyncio.run(_sweep_with_progress(rt, claim_ids=ids, trigger="onboarding"))
        console.print(_summary_table(summary))
        console.print(_denials_table(rt.Session))
        cmp = compare_with_truth(rt.Session, sb.control)
        ok = cmp["carc_sets_match"] and cmp["status_matches"] == cmp["checked"] and cmp["case_claims_match"]
        n = cmp["cases"]
        ok = ok and cmp["by_payer_carc_match"] and not (n["uncategorized"] or n["unrouted"] or n["unclocked"])
        console.print(f"ground truth: {cmp['status_matches']}/{cmp['checked']} statuses match (category, and "
                      f"the code where the page shows one; {cmp['statuses_without_code']} without a code: the "
                      f"page shows none); denied claims "
                      f"found {cmp['found_denied_claims']} of {cmp['truth_denied_claims']}; CARC sets "
                      f"{'match' if cmp['carc_sets_match'] else 'DIFFER'} {cmp['found_carcs']}")
        console.print(f"denial cases: {n['denial']} denials and {n['rejection']} rejections opened, "
                      f"{n['assigned']} assigned to a person; "
                      f"{n['uncategorized']} uncategorized, {n['unrouted']} unrouted, {n['unclocked']} without "
                      f"clocks; one denial case per denied claim of the ground truth: "
                      f"{'yes' if cmp['case_claims_match'] else 'NO'}; by payer and CARC "
                      f"{'match' if cmp['by_payer_carc_match'] else 'DIFFER'} the ground truth "
                      f"({', '.join(f'{k} {v}' for k, v in cmp['by_payer_carc'].items())})  (portal-agent denials --demo)")
        console.print(_queue_top(rt.Session))
        from store import kpis

        with rt.Session() as s:
            for o in sorted(repo.orgs_by_id(s).values(), key=lambda o: o.external_id):
                console.print(f"KPIs {o.external_id}: {_headline(kpis.report(s, o.id))}  (portal-agent report --demo)")
        writes = sb.control.get("/control/writes").json()
        console.print(f"read-only: the portals received {len(writes)} state-changing requests beyond login, MFA "
                      f"and search; the guard blocked {summary.counts.get('blocked_actions', 0)}; evidence kept "
                      f"for {summary.counts.get('evidence_kept', 0)} status changes")
        ok = ok and not writes
        with rt.Session() as s:
            bad = [r for r in repo.account_health(s, now=datetime.now(UTC), stale_after=timedelta(
                hours=settings.recheck_hours * 2)) if r["needs_attention"]]
        console.print(f"health: {counts['accounts'] - len(bad)} of {counts['accounts']} accounts healthy"
                      + "".join(f"; {r['portal']} account {r['account_id']}: {r['needs_attention']}" for r in bad)
                      + "  (portal-agent health)")
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
    from portal_agent.runtime import Runtime

    configure(get_settings().log_level or "WARNING")
    rt = Runtime.start(get_settings())
    summary = asyncio.run(_sweep_with_progress(rt, portal_key=portal, trigger="cli"))
    console.print(_summary_table(summary))


@app.command()
def check(claim_id: str = typer.Argument(..., help="the claim's id in the PMS (external id)")) -> None:
    """Check one claim now (on demand), due or not."""
    from portal_agent.runtime import Runtime
    from store import repo
    from store.models import Claim

    configure(get_settings().log_level or "WARNING")
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


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


def _when(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "-"


@app.command()
def evidence(
    claim_id: str = typer.Argument(..., help="the claim's id in the PMS (external id)"),
    export: str = typer.Option(None, "--export", help="evidence ref to export (from the list)"),
    out: Path = typer.Option(Path("evidence-export"), "--out", help="directory to write the export to"),
) -> None:
    """List the evidence kept for a claim (pages read when its status changed, and failures), or export one
    as files to attach to an appeal: screenshot, page HTML, manifest with SHA-256 hashes."""
    from portal_agent.runtime import Runtime
    from store import repo
    from store.models import Claim

    configure(get_settings().log_level or "WARNING")
    rt = Runtime.start(get_settings())
    with rt.Session() as s:
        ids = repo.claim_ids(s, external_id=claim_id)
        if not ids:
            raise typer.BadParameter(f"no tracked claim with id {claim_id!r}", param_hint="CLAIM_ID")
        rows = repo.evidence_for_claim(s, ids[0])
        org_id = s.get(Claim, ids[0]).org_id
        if export is None:
            repo.audit(s, org_id=org_id, actor=_actor(), action="evidence.list", subject=f"claim:{ids[0]}")
            s.commit()
            table = Table(title=f"evidence for {claim_id}")
            for col in ("ref", "kind", "observed (UTC)", "portal", "page", "reason", "status read", "hashes"):
                table.add_column(col)
            status_by_ref = repo.observation_status_by_evidence(s, ids[0])
            for r in rows:
                table.add_row(r.ref, r.kind, _when(r.observed_at), r.portal_key, r.url_path or "-", r.reason or "-",
                              status_by_ref.get(r.ref, "-"), "ok" if rt.evidence.verify(r) else "MISMATCH")
            console.print(table if rows else f"no evidence kept for {claim_id}")
            return
        row = next((r for r in rows if r.ref == export), None)
        if row is None:
            raise typer.BadParameter(f"no evidence {export!r} for claim {claim_id!r}", param_hint="--export")
        try:
            files = rt.evidence.export(row, out, claim_external_id=claim_id)
        except ValueError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from e
        repo.audit(s, org_id=org_id, actor=_actor(), action="evidence.export", subject=f"evidence:{row.ref}")
        s.commit()
    for f in files:
        console.print(str(f))


@app.command()
def denials(
    role: str = typer.Option(None, help="one role's queue (front_desk, coder, biller, ...)"),
    person: int = typer.Option(None, help="one person's queue (id)"),
    org: str = typer.Option(None, help="one organization (its id in the PMS); default: each"),
    payer: str = typer.Option(None, help="only this payer (key)"),
    bucket: str = typer.Option(None, help="only this root cause (eligibility, coding, ...)"),
    within: int = typer.Option(None, min=0, help="only cases with a payer deadline within N days"),
    min_amount: float = typer.Option(None, min=0, help="only cases of at least this many dollars"),
    limit: int = typer.Option(50, min=1, max=500, help="cases per organization"),
    demo: bool = typer.Option(False, help="read the demo's store (what `portal-agent demo` left)"),
) -> None:
    """The work queue: open denial and rejection cases, the one worth working next first (priority =
    dollars at risk x odds of winning x urgency), with owner, work SLA and payer deadlines."""
    from datetime import UTC, datetime

    from core.roles import PEOPLE_ROLES
    from portal_agent.runtime import Runtime
    from store import queue, repo, work
    from store.workflow.categorize import Bucket
    from store.workflow.clocks import day_zero

    if role is not None and role not in PEOPLE_ROLES:
        raise typer.BadParameter(f"{role!r} is not a role ({', '.join(sorted(PEOPLE_ROLES))})", param_hint="--role")
    if bucket is not None and bucket not in {b.value for b in Bucket}:
        raise typer.BadParameter(f"{bucket!r} is not a root cause ({', '.join(b.value for b in Bucket)})",
                                 param_hint="--bucket")
    configure(get_settings().log_level or "WARNING")
    settings = get_settings().model_copy()
    if demo:
        settings.data_dir, settings.database_url = settings.data_dir / "demo", ""
    rt = Runtime.start(settings)
    shown = 0
    with rt.Session() as s:
        orgs = [o for o in repo.orgs_by_id(s).values() if org is None or o.external_id == org]
        if org is not None and not orgs:
            asyncio.run(rt.aclose())
            raise typer.BadParameter(f"no organization {org!r}", param_hint="--org")
        for o in orgs:
            page = queue.work_queue(s, o.id, role=role, person_id=person, payer_key=payer, bucket=bucket,
                                    deadline_within_days=within, today=day_zero(datetime.now(UTC), o.time_zone),
                                    min_amount_cents=None if min_amount is None else round(min_amount * 100),
                                    limit=limit)
            if not page.rows:
                continue
            names = {p.id: p.name for p in work.people(s, o.id, active_only=False)}
            title = f"{o.external_id} {o.name}: work queue" + (f" of {role}" if role else "") + (
                f" of {names.get(person, person)}" if person else "")
            table = Table(title=title, box=None, pad_edge=False, show_edge=False)
            for col in ("priority", "claim", "payer", "amount", "SLA due", "payer deadline", "owner: why"):
                table.add_column(col, justify="right" if col in ("priority", "amount") else "left",
                                 no_wrap=col in ("priority", "claim", "payer", "amount"), overflow="fold")
            for r in page.rows:
                c = r.case
                who = _why(c) + (f" ({names.get(c.owner_person_id, c.owner_person_id)})" if c.owner_person_id else "")
                who += f" [{c.state}{' URGENT' if c.urgent_since else ''}]"
                table.add_row(f"{c.priority:,.0f}", r.claim.external_id, r.payer.key, f"{c.amount_cents / 100:,.2f}",
                              _earliest((("work", c.work_by), ("appeal", c.appeal_by), ("p2p", c.peer_to_peer_by))),
                              _earliest((("appeal", c.appeal_deadline), ("filing", c.timely_filing_deadline))), who)
            console.print(table)
            shown += len(page.rows)
            if page.next_cursor:
                console.print(f"more cases behind these {limit} (--limit)")
    console.print(f"{shown} open cases")
    asyncio.run(rt.aclose())


def _pct(x) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _usd(cents) -> str:
    return f"${(cents or 0) / 100:,.2f}"


def _headline(r: dict) -> str:
    top = r["top_reasons_by_dollars"][:1]
    return (f"denial rate {_pct(r['denial_rate'])} of {r['claims']['adjudicated']} adjudicated claims; first-pass "
            f"resolution {_pct(r['first_pass_resolution_rate'])}; {_usd(r['dollars_denied_cents'])} denied"
            + (f" (most: {top[0]['reason']} {_usd(top[0]['dollars_cents'])})" if top else "")
            + f"; never worked {_pct(r['never_worked_rate'])}; recovered {_usd(r['revenue_recovered_cents'])}")


@app.command()
def report(
    org: str = typer.Option(None, help="one organization (its id in the PMS); default: each"),
    since: str = typer.Option(None, help="from this date (YYYY-MM-DD): claims submitted, cases detected"),
    until: str = typer.Option(None, help="before this date (YYYY-MM-DD)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable, one object per organization"),
    demo: bool = typer.Option(False, help="read the demo's store (what `portal-agent demo` left)"),
) -> None:
    """Denial KPIs and root causes: denial rates (by payer, provider, CPT), first-pass resolution, final
    denial rate, rework days, appeal overturn rates, never worked, write-offs, recovered, A/R aging, top
    reasons, trend by month."""
    import json
    from datetime import date

    from portal_agent.runtime import Runtime
    from store import kpis, repo

    def day(value: str | None, hint: str) -> date | None:
        try:
            return None if value is None else date.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=hint) from None

    start, end = day(since, "--since"), day(until, "--until")
    if start and end and end <= start:
        raise typer.BadParameter("must be after --since", param_hint="--until")
    configure(get_settings().log_level or "WARNING")
    settings = get_settings().model_copy()
    if demo:
        settings.data_dir, settings.database_url = settings.data_dir / "demo", ""
    rt = Runtime.start(settings)
    with rt.Session() as s:
        orgs = [o for o in sorted(repo.orgs_by_id(s).values(), key=lambda o: o.external_id)
                if org is None or o.external_id == org]
        reports = {o.external_id: (o, kpis.report(s, o.id, since=start, until=end)) for o in orgs}
    asyncio.run(rt.aclose())
    if org is not None and not orgs:
        raise typer.BadParameter(f"no organization {org!r}", param_hint="--org")
    if as_json:
        typer.echo(json.dumps({k: r for k, (_, r) in reports.items()}, indent=2, sort_keys=True))
        return
    for key, (o, r) in reports.items():
        console.print(f"[bold]{key} {o.name}[/bold]: {_headline(r)}")
        t = Table(title="denial rate by payer", box=None)
        for col in ("payer", "adjudicated", "denied", "rate"):
            t.add_column(col)
        for x in r["denial_rate_by_payer"]:
            t.add_row(x["key"], str(x["adjudicated"]), str(x["denied"]), _pct(x["rate"]))
        console.print(t)
        t = Table(title="top denial reasons", box=None)
        for col in ("reason", "count", "dollars"):
            t.add_column(col)
        for x in r["top_reasons_by_dollars"]:
            t.add_row(x["reason"], str(x["count"]), _usd(x["dollars_cents"]))
        console.print(t)
        w = r["write_offs"]
        aging = ", ".join(f"{b}: {v['claims']} ({_usd(v['billed_cents'])})" for b, v in r["ar_aging"].items())
        console.print(f"final denial rate {_pct(r['final_denial_rate'])}; soft denials reworked in "
                      f"{r['avg_days_to_rework_soft'] if r['avg_days_to_rework_soft'] is not None else '-'} days on "
                      f"average; write-offs {w['cases']} ({_usd(w['dollars_cents'])}, {_pct(w['share_of_billed'])} of "
                      f"billed); appeals decided {sum(x['decided'] for x in r['appeal_overturn_rate'])}")
        console.print(f"A/R aging (not paid yet): {aging}")
        console.print("by month: " + ", ".join(f"{x['month']} {x['denials']} denials {x['rejections']} rejections"
                                              for x in r["trend_by_month"]))


@app.command()
def health() -> None:
    """Portal and account health: logins, last successful check, failures, circuit, drift, canary,
    stale claims, and what needs attention."""
    from datetime import UTC, datetime, timedelta

    from portal_agent.runtime import Runtime
    from store import repo

    configure(get_settings().log_level or "WARNING")
    settings = get_settings()
    rt = Runtime.start(settings)
    now = datetime.now(UTC)
    with rt.Session() as s:
        rows = repo.account_health(s, now=now, stale_after=timedelta(hours=settings.recheck_hours * 2))
    if not rows:
        console.print("no portal accounts")
        return
    table = Table(title=f"portal health at {_when(now)} UTC (stale = not read for {settings.recheck_hours * 2:g} h)")
    for col in ("portal", "account", "status", "last login", "last check", "fails", "circuit", "drift",
                "canary", "open claims", "stale", "oldest read", "needs attention"):
        table.add_column(col)
    for r in rows:
        canary = "-" if not r["canary_claim"] else (
            f"{r['canary_claim']} {r['canary_result'] or 'unread'}" + ("" if r["canary_trusted"] else " (candidate)"))
        drift = f"yes {_when(r['drift_at'])} {r['drift_evidence_ref'] or ''}" if r["drift"] else "no"
        attention = r["needs_attention"]
        table.add_row(r["portal"], f"{r['account_id']} {r['username']}", r["status"], _when(r["last_login_at"]),
                      _when(r["last_check_at"]), str(r["consecutive_failures"]), r["circuit"], drift, canary,
                      str(r["open_claims"]), str(r["stale_claims"]), _when(r["oldest_fresh_as_of"]),
                      f"[red]{attention}[/red]" if attention else "-")
    console.print(table)
    bad = sum(1 for r in rows if r["needs_attention"])
    console.print(f"{len(rows)} accounts, {bad} need attention")


@app.command()
def canary(
    account_id: int = typer.Argument(..., help="portal account id (see `portal-agent health`)"),
    claim_id: str = typer.Argument(None, help="the claim's id in the PMS; omit with --clear"),
    clear: bool = typer.Option(False, "--clear", help="let the agent choose the canary again"),
) -> None:
    """Name an account's canary: a settled claim whose last reading is known to be right."""
    from portal_agent.runtime import Runtime
    from store import repo
    from store.models import Claim, PortalAccount

    rt = Runtime.start(get_settings())
    with rt.Session() as s:
        acct = s.get(PortalAccount, account_id)
        if acct is None:
            raise typer.BadParameter(f"no portal account {account_id}", param_hint="ACCOUNT_ID")
        claim = None
        if not clear:
            if not claim_id:
                raise typer.BadParameter("give a claim id, or --clear", param_hint="CLAIM_ID")
            ids = repo.claim_ids(s, external_id=claim_id)
            claim = s.get(Claim, ids[0]) if ids else None
            if claim is None or claim.org_id != acct.org_id:
                raise typer.BadParameter(f"no claim {claim_id!r} in the account's organization", param_hint="CLAIM_ID")
        try:
            repo.pin_canary(s, acct, claim)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="CLAIM_ID") from e
        s.commit()
    console.print(f"account {account_id}: canary {'cleared' if clear else claim_id}")


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt stored credentials and sessions under the newest key of PORTAL_AGENT_VAULT_KEYS."""
    from portal_agent.runtime import Runtime
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
    from agent.scheduler import serve_forever
    from portal_agent.runtime import Runtime

    configure(get_settings().log_level or "INFO")
    settings = get_settings()
    rt = Runtime.start(settings)  # migrate before the job store touches the database
    asyncio.run(rt.aclose())
    console.print(f"scheduler: {settings.schedules}")
    asyncio.run(serve_forever(settings.resolved_database_url(), settings.schedules,
                              settings.escalation_every_minutes))


if __name__ == "__main__":
    app()
