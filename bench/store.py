"""Store-path benchmark (issue 9, item 3): selecting due claims and recording check results at scale.

    .venv/bin/python -m bench.store [--sizes 10000,100000,1000000] [--results 10000] [--pg URL | --no-pg]

For each size and each backend (SQLite in a temp dir; PostgreSQL when `--pg` is reachable, in a schema of
its own that is dropped afterwards) it:
  1. builds the schema with the real migrations and bulk-loads N claims with realistic history (1-3 lines,
     1-3 prior observations with their transitions and delivered outbox events, the current adjustments,
     ~12% denied with CARC denials (a quarter of them under appeal, so still checked), ~5% rejected,
     ~48% still open and due within the recheck window);
  2. times `store.repo.claims_due` with the per-sweep limit (`--due-limit`) and the agent's own planning
     step (`SweepRunner.plan`, which asks for every due claim);
  3. records `--results` check results with the real `store.repo.record_result` exactly as the sweep runner
     does (`SweepRunner._record`: one session and one transaction per result), then another `--results`
     with batched commits (`--batch` results per transaction). The mix: most re-reads unchanged, some new
     statuses, ~12% new denials with CARCs, some rejections, appealed denials paid (denial resolved);
  4. prints per-result cost, and the query plan (SQLite EXPLAIN QUERY PLAN / PostgreSQL EXPLAIN) of every
     distinct statement those steps sent (captured with a before_cursor_execute event), flagging any full
     scan of a large table.
Ends with the checks of the issue: per-result cost at the largest size within 2x of the smallest, per
backend, and no full scan in the hot path. `run()` returns the same report as a dict (tests use it).
Logs and output carry counts and timings only: the claims are synthetic, and no member data is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, event, select, text

from core.claims import ClaimStatusResult
from core.config import Settings
from store import repo
from store.db import make_engine, migrate, session_factory
from store.models import Claim, SweepRun
from store.workflow.categorize import default_categorizer

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RECHECK_HOURS = 20.0
N_ORGS = 20
PORTALS = ("clearinghouse", "commercial", "medicaid")
# Large tables: a scan of one of these in the hot path is what the benchmark must not show.
BIG_TABLES = ("claims", "claim_lines", "status_observations", "status_transitions", "adjustments", "denials",
              "outbox_events", "check_failures", "evidence")
CPTS = ("99213", "99214", "36415", "85025", "80053", "93000", "71046", "97110", "90471", "G0438")
LINE_CENTS = (2500, 4800, 9500, 15000, 21000, 32000, 7600, 12800)
DENIAL_CARCS = ("197", "16", "27", "50", "96", "29", "18", "204", "109", "11")
RARCS = ("N54", "M76", "N30", "MA130", "N290", "M51")
REJECTIONS = (("21", "Missing or invalid information"), ("562", "Invalid billing provider NPI"),
              ("164", "Invalid member id"), ("29", "Subscriber and policy number mismatched"))
OPEN_STATES = (("A1", "19"), ("A2", "20"), ("P1", "20"), ("P3", "21"))
NEXT_OPEN = {"A1": ("A2", "20"), "A2": ("P1", "20"), "P1": ("P3", "21"), "P3": ("P1", "20")}
LABELS = {"A1": "Received", "A2": "Accepted", "A3": "Rejected", "P1": "In process", "P3": "Information requested",
          "F1": "Paid", "F2": "Denied"}
FP_EXCLUDE = frozenset({"observed_at", "evidence_ref", "raw", "raw_label", "claim_ref", "shown_member_id",
                        "shown_dos_from", "shown_dos_to", "shown_claim_number", "shown_billed"})


def _mix(i: int, salt: int) -> int:
    """A cheap deterministic hash of a claim id (the claim's data is a pure function of its id)."""
    x = (i * 0x9E3779B1 + salt * 0x85EBCA77) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return x


def _money(c: int) -> str:
    """Cents as pydantic dumps a 2-place Decimal ('150.00'); amounts here are never negative."""
    return f"{c // 100}.{c % 100:02d}"


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- the synthetic claim book
@dataclass(frozen=True)
class ClaimInfo:
    id: int
    org_id: int
    payer_id: int
    portal: str
    external_id: str
    payer_claim_number: str
    member_id: str
    dos: date
    lines: tuple[tuple[int, str, int], ...]  # (line_no, cpt, billed_cents)

    @property
    def billed_cents(self) -> int:
        return sum(b for _, _, b in self.lines)


def claim_info(i: int, today: date) -> ClaimInfo:
    h = _mix(i, 1)
    org = 1 + i % N_ORGS
    p = (i // N_ORGS) % len(PORTALS)
    n_lines = 1 + h % 3
    lines = tuple((k + 1, CPTS[((h >> 4) + k * 3) % len(CPTS)], LINE_CENTS[((h >> 8) + k) % len(LINE_CENTS)])
                  for k in range(n_lines))
    return ClaimInfo(id=i, org_id=org, payer_id=(org - 1) * len(PORTALS) + p + 1, portal=PORTALS[p],
                     external_id=f"PCN{i:09d}", payer_claim_number=f"{'CMN'[p]}{_mix(i, 2):010d}",
                     member_id=f"Z{_mix(i, 3) % 10**9:09d}", dos=today - timedelta(days=20 + h % 160),
                     lines=lines)


def history(i: int) -> tuple[list[tuple[str, str]], bool]:
    """The claim's status history (oldest first; 1-3 observations) and whether an appeal is open."""
    u = _mix(i, 4) % 1000
    k = 1 + _mix(i, 5) % 3
    if u < 350:
        path = [("A1", "19"), ("A2", "20"), ("F1", "65")]
    elif u < 470:
        path = [("A2", "20"), ("P1", "20"), ("F2", "88")]
    elif u < 520:
        rej = REJECTIONS[_mix(i, 6) % len(REJECTIONS)]
        path = [("A1", "19"), ("A3", rej[0])]
    else:
        cur = OPEN_STATES[_mix(i, 6) % len(OPEN_STATES)]
        path = [("A1", "19"), ("A2", "20"), cur] if cur[0] != "A1" else [("A1", "19")]
        if k > len(path):  # an unchanged re-read in the history
            path = path + [cur]
    return path[-k:], 350 <= u < 380  # a quarter of the denials are under appeal


def result_dict(c: ClaimInfo, cat: str, code: str, at: datetime) -> dict:
    """The normalized result a portal read gives for `c` in status (cat, code): model_dump(mode="json") form."""
    lines, allowed_t, paid_t, pr_t = [], 0, 0, 0
    rej = cat == "A3"
    for no, cpt, billed in ([] if rej else c.lines):
        ln = {"line_no": no, "cpt": cpt, "modifiers": [], "billed": _money(billed), "allowed": None,
              "paid": None, "adjustments": [], "rarcs": []}
        if cat in ("F1", "F2"):
            if cat == "F2" and no == 1:
                carc = DENIAL_CARCS[_mix(c.id, 7) % len(DENIAL_CARCS)]
                ln.update(allowed="0.00", paid="0.00", rarcs=[RARCS[_mix(c.id, 8) % len(RARCS)]],
                          adjustments=[{"group": "CO", "carc": carc, "amount": _money(billed), "raw": carc}])
            else:
                allowed = billed * 4 // 5
                coins = allowed // 5
                ln.update(allowed=_money(allowed), paid=_money(allowed - coins), adjustments=[
                    {"group": "CO", "carc": "45", "amount": _money(billed - allowed), "raw": None},
                    {"group": "PR", "carc": "2", "amount": _money(coins), "raw": None}])
                allowed_t, paid_t, pr_t = allowed_t + allowed, paid_t + allowed - coins, pr_t + coins
        lines.append(ln)
    fin = cat in ("F1", "F2")
    return {
        "claim_ref": c.external_id, "portal_key": c.portal, "observed_at": _iso(at), "status_category": cat,
        "status_code": code, "payer_claim_number": None if cat in ("A1", "A3") else c.payer_claim_number,
        "billed": _money(c.billed_cents), "allowed": _money(allowed_t) if fin else None,
        "paid": _money(paid_t) if fin else None, "patient_responsibility": _money(pr_t) if fin else None,
        "check_number": f"EFT{c.id:08d}" if cat == "F1" else None,
        "check_date": (c.dos + timedelta(days=30)).isoformat() if cat == "F1" else None,
        "lines": lines,
        "rejection_reason": next((t for k, t in REJECTIONS if k == code), None) if rej else None,
        "raw_label": LABELS[cat], "raw": {"status_text": LABELS[cat]},
        "shown_member_id": c.member_id, "shown_dos_from": c.dos.isoformat(), "shown_dos_to": c.dos.isoformat(),
        "shown_claim_number": c.payer_claim_number if cat not in ("A1", "A3") else c.external_id,
        "shown_billed": _money(c.billed_cents), "evidence_ref": None,
    }


def fast_fingerprint(d: dict) -> str:
    """store.repo.fingerprint over the dict form (checked against the real one before every load)."""
    body = {k: v for k, v in d.items() if k not in FP_EXCLUDE}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def stored_json(d: dict) -> str:
    return json.dumps({k: v for k, v in d.items() if k != "shown_member_id"})


_TEMPLATES: dict[tuple, tuple[dict, str, str]] = {}


def observation_strings(c: ClaimInfo, cat: str, code: str, at: datetime) -> tuple[dict, str, str]:
    """(result dict of the claim's shape, stored JSON, fingerprint) as record_result would write them.
    Claims of one shape (portal, lines, status, CARC/RARC) share a template; the claim's own values
    (references, dates, check number) are put back by replacement. check_result_model() compares the
    outcome with the real pydantic dump and store.repo.fingerprint on thousands of claims before a load."""
    key = (c.portal, c.lines, cat, code,
           (_mix(c.id, 7) % len(DENIAL_CARCS), _mix(c.id, 8) % len(RARCS)) if cat == "F2" else None)
    own = _own_values(c, at)
    tpl = _TEMPLATES.get(key)
    if tpl is None:
        d = result_dict(c, cat, code, at)
        stored, body = stored_json(d), json.dumps({k: v for k, v in d.items() if k not in FP_EXCLUDE},
                                                  sort_keys=True)
        for k, v in enumerate(own):
            stored, body = stored.replace(f'"{v}"', f'"\x00{k}"'), body.replace(f'"{v}"', f'"\x00{k}"')
        tpl = _TEMPLATES[key] = (d, stored, body)
    d, stored, body = tpl
    for k, v in enumerate(own):
        stored, body = stored.replace(f"\x00{k}", v), body.replace(f"\x00{k}", v)
    return d, stored, hashlib.sha256(body.encode()).hexdigest()


def _own_values(c: ClaimInfo, at: datetime) -> tuple[str, ...]:
    return (c.external_id, c.payer_claim_number, f"EFT{c.id:08d}", c.dos.isoformat(),
            (c.dos + timedelta(days=30)).isoformat(), _iso(at))


def check_result_model(today: date, now: datetime, n: int = 3000) -> None:
    """The bulk loader writes what record_result would: same JSON, same fingerprint (else re-reads lie)."""
    for i in range(1, n):
        c = claim_info(i, today)
        at = now - timedelta(days=i % 40, minutes=i)
        for cat, code in history(i)[0] + [("F1", "65"), ("F2", "88"), ("A3", "21")]:
            _, stored, fp = observation_strings(c, cat, code, at)
            d = result_dict(c, cat, code, at)
            if (stored, fp) != (stored_json(d), fast_fingerprint(d)):
                raise AssertionError(f"templated observation differs for status {cat}")
            if i % 50 == 0:
                r = ClaimStatusResult.model_validate(d)
                if repo.fingerprint(r) != fp:
                    raise AssertionError(f"fingerprint mismatch for status {cat}")
                if r.model_dump(mode="json", exclude={"shown_member_id"}) != json.loads(stored):
                    raise AssertionError(f"stored JSON mismatch for status {cat}")


# ---------------------------------------------------------------- backends and bulk load
def _dt(v: datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it in SQLite; PostgreSQL's COPY reads it too (session time zone UTC)."""
    return v.isoformat(" ", "microseconds")[:26]


def _d(v: date) -> str:
    return v.isoformat()


def _proc_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Backend:
    name = ""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def dt(self, v: datetime):
        """A datetime as a bound parameter of a raw SQL statement."""
        return v

    def make_engine(self) -> Engine:
        raise NotImplementedError

    def copy(self, conn, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        raise NotImplementedError

    def before_load(self, conn) -> None:
        pass

    def after_load(self, conn) -> None:
        pass

    def explain(self, conn, stmt: str, params) -> list[str]:
        raise NotImplementedError

    def server_cpu(self) -> dict[int, float] | None:
        """CPU seconds used so far by the database server processes serving this engine (None: in-process)."""
        return None

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory(prefix="bench_store_")
        self.url = f"sqlite:///{self.dir.name}/store_{n}.db"

    def dt(self, v: datetime) -> str:
        return _dt(v)

    def make_engine(self) -> Engine:
        return make_engine(self.url)

    def copy(self, conn, table, cols, rows):
        cur = conn.cursor()
        cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        cur.close()

    def explain(self, conn, stmt, params):
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params).fetchall()
        return [str(r[-1]) for r in rows]

    def close(self) -> None:
        super().close()
        self.dir.cleanup()


class PostgresBackend(Backend):
    """A schema of its own in the shared database (dropped on close); the engine is store.db.make_engine's."""

    name = "postgresql"

    def __init__(self, base_url: str, n: int) -> None:
        super().__init__()
        self.base_url = base_url
        self.schema = f"bench_store_{os.getpid()}_{n}"
        self.admin = make_engine(base_url)
        with self.admin.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            c.exec_driver_sql(f"CREATE SCHEMA {self.schema}")

    def make_engine(self) -> Engine:
        engine = make_engine(self.base_url)
        schema = self.schema

        @event.listens_for(engine, "connect", insert=True)
        def _schema(dbapi_conn, _record):
            auto = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET search_path TO {schema}")
                cur.execute("SET TIME ZONE 'UTC'")
                cur.execute(f"SET application_name TO '{schema}'")
            dbapi_conn.autocommit = auto

        return engine

    def copy(self, conn, table, cols, rows):
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)

    def after_load(self, conn) -> None:
        with conn.cursor() as cur:
            for t in ("organizations", "payers", "providers", "portal_accounts", "claims", "claim_lines",
                      "status_observations", "status_transitions", "adjustments", "denials", "outbox_events"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))")
        conn.commit()
        old = conn.autocommit
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ANALYZE")  # what autovacuum does after a bulk load
        conn.autocommit = old

    def explain(self, conn, stmt, params):
        rows = conn.exec_driver_sql("EXPLAIN " + stmt, params).fetchall()
        return [str(r[0]) for r in rows]

    def server_cpu(self) -> dict[int, float] | None:
        with self.admin.connect() as c:
            pids = c.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE application_name = %(a)s",
                                     {"a": self.schema}).scalars().all()
        got = {p: _proc_cpu(p) for p in pids}
        if any(v is None for v in got.values()):
            return None  # the server is not on this machine (or not readable): wall time only
        return got

    def close(self) -> None:
        super().close()
        with self.admin.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.admin.dispose()


def pg_reachable(url: str) -> str:
    """'' when PostgreSQL answers at `url`, else why not."""
    try:
        e = make_engine(url)
        with e.connect() as c:
            c.exec_driver_sql("SELECT 1")
        e.dispose()
        return ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; the type is reported
        return type(exc).__name__


COLS = {
    "claims": ("id", "org_id", "payer_id", "provider_id", "external_id", "payer_claim_number", "member_id",
               "patient_dob", "patient_first_name", "patient_last_name", "billing_npi", "dos_from", "dos_to",
               "billed_cents", "submitted_on", "status_category", "status_code", "finalized", "appeal_open",
               "fresh_as_of", "last_checked_at", "next_check_at", "last_error"),
    "claim_lines": ("id", "claim_id", "line_no", "cpt", "modifiers", "units", "billed_cents", "allowed_cents",
                    "paid_cents"),
    "status_observations": ("id", "org_id", "claim_id", "observed_at", "source", "account_id", "sweep_run_id",
                            "status_category", "status_code", "raw_label", "fingerprint", "changed", "result",
                            "evidence_ref"),
    "status_transitions": ("id", "org_id", "claim_id", "observation_id", "from_category", "from_code",
                           "to_category", "to_code", "at"),
    "adjustments": ("id", "org_id", "claim_id", "observation_id", "line_no", "group_code", "carc", "amount_cents",
                    "rarcs"),
    "denials": ("id", "org_id", "claim_id", "line_key", "kind", "group_code", "reason_code", "rarcs",
                "amount_cents", "reason_text", "first_seen_at", "last_seen_at", "open", "closed_at"),
    "outbox_events": ("id", "event_id", "org_id", "event_type", "aggregate_key", "payload", "created_at",
                      "delivered_at"),
}
FIRST = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana")
LAST = ("Reyes", "Okafor", "Lind", "Sato", "Nowak", "Haddad", "Moreau", "Quinn")


@dataclass
class Counters:
    line: int = 0
    obs: int = 0
    tr: int = 0
    adj: int = 0
    den: int = 0
    ev: int = 0


def claim_rows(lo: int, hi: int, now: datetime, today: date, ids: Counters) -> dict[str, list]:
    """Rows of every table for claims lo..hi-1 (ids assigned here; children follow their parents)."""
    out: dict[str, list] = {t: [] for t in COLS}
    dt, d = _dt, _d
    for i in range(lo, hi):
        c = claim_info(i, today)
        hist, appeal = history(i)
        acct = (c.org_id - 1) * len(PORTALS) + PORTALS.index(c.portal) + 1
        first_at = datetime(c.dos.year, c.dos.month, c.dos.day, 9, tzinfo=UTC) + timedelta(days=12)
        prev: tuple[str | None, str | None] = (None, None)
        last_obs, last_d, at = 0, None, first_at
        for k, (cat, code) in enumerate(hist):
            at = first_at + timedelta(days=3 * k, minutes=_mix(i, 9) % 600)
            rd, stored, fp = observation_strings(c, cat, code, at)
            ids.obs += 1
            changed = (cat, code) != prev
            out["status_observations"].append((
                ids.obs, c.org_id, i, dt(at), c.portal, acct, None, cat, code, rd["raw_label"], fp, changed,
                stored, None))
            if changed:
                ids.tr += 1
                out["status_transitions"].append((ids.tr, c.org_id, i, ids.obs, prev[0], prev[1], cat, code, dt(at)))
                ids.ev += 1
                payload = json.dumps({"claim": c.external_id, "from": prev[0], "to": cat, "status_code": code,
                                      "observed_at": _iso(at)})
                out["outbox_events"].append((ids.ev, f"evt_{_mix(i, 10 + k):08x}{ids.ev:024x}", c.org_id,
                                             "claim.status_changed", f"claim:{i}", payload, dt(at),
                                             dt(at + timedelta(seconds=5))))
            prev, last_obs, last_d = (cat, code), ids.obs, rd
        cat, code = prev
        for ln in last_d["lines"]:
            ids.line += 1
            out["claim_lines"].append((
                ids.line, i, ln["line_no"], ln["cpt"], "[]", 1, int(Decimal(ln["billed"]) * 100),
                None if ln["allowed"] is None else int(Decimal(ln["allowed"]) * 100),
                None if ln["paid"] is None else int(Decimal(ln["paid"]) * 100)))
            for a in ln["adjustments"]:
                ids.adj += 1
                out["adjustments"].append((ids.adj, c.org_id, i, last_obs, ln["line_no"], a["group"], a["carc"],
                                           int(Decimal(a["amount"]) * 100), json.dumps(ln["rarcs"])))
                if not default_categorizer().is_normal(a["group"], a["carc"]):
                    ids.den += 1
                    out["denials"].append((ids.den, c.org_id, i, ln["line_no"], "denial", a["group"], a["carc"],
                                           json.dumps(ln["rarcs"]), int(Decimal(a["amount"]) * 100), a["raw"],
                                           dt(at), dt(at), True, None))
        if cat == "A3":
            for no, cpt, billed in c.lines:  # a rejected claim still has its billed lines
                ids.line += 1
                out["claim_lines"].append((ids.line, i, no, cpt, "[]", 1, billed, None, None))
            ids.den += 1
            out["denials"].append((ids.den, c.org_id, i, 0, "rejection", "", code, "[]", c.billed_cents,
                                   last_d["rejection_reason"], dt(at), dt(at), True, None))
        finalized = cat in ("F1", "F2", "A3")
        if finalized and not appeal:
            nxt = None
        else:  # due somewhere in the last 2 hours .. the next recheck window
            nxt = now + timedelta(minutes=-120 + _mix(i, 11) % int(RECHECK_HOURS * 60 + 120))
        prov = (c.org_id - 1) * 2 + i % 2 + 1
        out["claims"].append((
            i, c.org_id, c.payer_id, prov, c.external_id, None if cat in ("A1", "A3") else c.payer_claim_number,
            c.member_id,
            d(date(1950 + i % 60, 1 + i % 12, 1 + i % 28)), FIRST[i % 8], LAST[(i // 8) % 8], f"{1000000000 + prov}",
            d(c.dos), d(c.dos), c.billed_cents, d(c.dos + timedelta(days=2)), cat, code, finalized, appeal,
            dt(at), dt(at), None if nxt is None else dt(nxt), None))
    return out


def load_reference(b: Backend, now: datetime) -> None:
    """Organizations, payers (one per portal), portal accounts and providers; the code tables."""
    Session = session_factory(b.engine)
    with Session() as s:
        repo.load_code_tables(s)
        for o in range(1, N_ORGS + 1):
            s.execute(text("INSERT INTO organizations (id, name, external_id, created_at) VALUES (:i, :n, :e, :t)"),
                      {"i": o, "n": f"Practice {o}", "e": f"ORG{o:03d}", "t": b.dt(now)})
        for o in range(1, N_ORGS + 1):
            for p, portal in enumerate(PORTALS):
                pid = (o - 1) * len(PORTALS) + p + 1
                s.execute(text("INSERT INTO payers (id, org_id, key, name, portal_key, typical_days_to_pay) "
                               "VALUES (:i, :o, :k, :n, :p, 21)"),
                          {"i": pid, "o": o, "k": f"P{p}", "n": f"Payer {p}", "p": portal})
                s.execute(text("INSERT INTO portal_accounts (id, org_id, portal_key, base_url, username, "
                               "secret_ciphertext, status, consecutive_failures) "
                               "VALUES (:i, :o, :p, :u, :n, :c, 'active', 0)"),
                          {"i": pid, "o": o, "p": portal, "u": f"http://127.0.0.1:1/{portal}", "n": f"user{pid}",
                           "c": os.urandom(48)})  # random bytes: no credential of anything
            for k in (1, 2):
                pv = (o - 1) * 2 + k
                s.execute(text("INSERT INTO providers (id, org_id, npi, name) VALUES (:i, :o, :n, :m)"),
                          {"i": pv, "o": o, "n": f"{1000000000 + pv}", "m": f"Provider {pv}"})
        s.commit()


def bulk_load(backends: list[Backend], n: int, now: datetime, chunk: int = 20000,
              progress=None) -> tuple[dict, float, dict]:
    """The claim book, generated once per chunk and written to every backend through its driver
    (executemany for SQLite, COPY for PostgreSQL). Returns row counts, generation seconds, load seconds."""
    today = now.date()
    ids = Counters()
    raws = [b.engine.raw_connection() for b in backends]
    gen_s, load_s = 0.0, {b.name: 0.0 for b in backends}
    try:
        for lo in range(1, n + 1, chunk):
            t = time.perf_counter()
            rows = claim_rows(lo, min(n + 1, lo + chunk), now, today, ids)
            gen_s += time.perf_counter() - t
            if progress and (lo - 1) % (chunk * 10) == 0 and lo > 1:
                progress(f"  ... {lo - 1:,} of {n:,} claims loaded")
            for b, raw in zip(backends, raws, strict=True):
                t = time.perf_counter()
                dbapi = raw.driver_connection
                for tname in COLS:  # parents first
                    if rows[tname]:
                        b.copy(dbapi, tname, COLS[tname], rows[tname])
                dbapi.commit()
                load_s[b.name] += time.perf_counter() - t
        for b, raw in zip(backends, raws, strict=True):
            t = time.perf_counter()
            b.after_load(raw.driver_connection)
            load_s[b.name] += time.perf_counter() - t
    finally:
        for raw in raws:
            raw.close()
    counts = {"claims": n, "claim_lines": ids.line, "status_observations": ids.obs, "status_transitions": ids.tr,
              "adjustments": ids.adj, "denials": ids.den, "outbox_events": ids.ev}
    return counts, gen_s, load_s


# ---------------------------------------------------------------- statement capture and plans
@dataclass
class Capture:
    on: bool = False
    seen: dict[str, object] = field(default_factory=dict)  # statement -> first parameters
    phase: dict[str, str] = field(default_factory=dict)
    name: str = ""

    @contextmanager
    def phase_of(self, name: str) -> Iterator[None]:
        self.on, self.name = True, name
        try:
            yield
        finally:
            self.on = False

    def listener(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not self.on or statement in self.seen:
            return
        head = statement.lstrip().split(None, 1)[0].upper()
        if head not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            return
        params = parameters
        if executemany and isinstance(parameters, list | tuple) and parameters \
                and isinstance(parameters[0], dict | list | tuple):
            params = parameters[0]
        self.seen[statement] = params
        self.phase[statement] = self.name


def full_scans(backend: str, plan: list[str]) -> list[str]:
    """Plan lines that read a whole large table (or a whole index of one, without a bound)."""
    bad = []
    if backend == "sqlite":
        for ln in plan:
            m = re.match(r"\s*SCAN (\w+)", ln)
            if m and m.group(1) in BIG_TABLES:
                bad.append(ln.strip())
        return bad
    for k, ln in enumerate(plan):
        m = re.search(r"(Seq Scan|Index Scan(?: Backward)?|Index Only Scan) (?:using \w+ )?on (\w+)", ln)
        if not m or m.group(2) not in BIG_TABLES:
            continue
        if m.group(1) == "Seq Scan":
            bad.append(ln.strip())
            continue
        node = []
        for nxt in plan[k + 1:]:
            if "->" in nxt:
                break
            node.append(nxt)
        if not any("Index Cond" in x for x in node):
            bad.append(ln.strip())
    return bad


def explain_all(b: Backend, cap: Capture) -> list[dict]:
    out = []
    with b.engine.connect() as conn:
        for stmt, params in cap.seen.items():
            try:
                plan = b.explain(conn, stmt, params)
            except Exception as exc:  # noqa: BLE001 - reported, never hidden
                plan = [f"(explain failed: {type(exc).__name__})"]
                conn.rollback()
            out.append({"phase": cap.phase[stmt], "sql": " ".join(stmt.split()), "plan": plan,
                        "full_scans": full_scans(b.name, plan)})
        conn.rollback()
    return out


# ---------------------------------------------------------------- the timed steps
def _ms(seconds: float) -> float:
    return round(seconds * 1000, 4)


class Meter:
    """Wall seconds, and CPU seconds of this process plus the database server processes serving it."""

    def __init__(self, b: Backend) -> None:
        self.b = b

    def __enter__(self) -> Meter:
        self.srv0 = self.b.server_cpu()
        self.cpu0, self.t0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.cpu0
        srv1 = self.b.server_cpu()
        self.server_measured = self.srv0 is not None and srv1 is not None
        if self.server_measured:
            self.cpu += sum(v - self.srv0.get(p, 0.0) for p, v in srv1.items())


def time_due(b: Backend, cap: Capture, now: datetime, limit: int, reps: int = 5) -> dict:
    from agent.sweep import SweepRunner  # the agent's own planning step

    Session = session_factory(b.engine)
    settings = Settings()
    runner = SweepRunner(settings, Session, pool=None, evidence=None, vault=None, clock=lambda: now)
    due_t, plan_t, n_due, n_planned = [], [], 0, 0
    with cap.phase_of("claims_due"):
        for _ in range(reps):
            with Session() as s:
                t = time.perf_counter()
                got = repo.claims_due(s, now=now, limit=limit)
                due_t.append(time.perf_counter() - t)
                n_due = len(got)
    with cap.phase_of("plan"):
        for _ in range(max(1, reps // 2)):
            with Session() as s:
                t = time.perf_counter()
                plan = runner.plan(s, None, None)
                plan_t.append(time.perf_counter() - t)
                n_planned = sum(len(jobs) for _, jobs in plan)
    with Session() as s:
        all_due = s.scalar(text("SELECT count(*) FROM claims WHERE next_check_at IS NOT NULL "
                                "AND next_check_at <= :n"), {"n": b.dt(now)})
    if n_planned != min(all_due, settings.sweep_max_claims) or n_due != min(limit, all_due):
        raise AssertionError(f"plan has {n_planned} claims, claims_due {n_due}, {all_due} are due")
    return {"due_limit": limit, "due_returned": n_due, "due_query_ms": _ms(min(due_t)),
            "due_query_median_ms": _ms(statistics.median(due_t)), "due_total": all_due,
            "plan_ms": _ms(min(plan_t)), "planned": n_planned,
            "plan_us_per_claim": round(min(plan_t) / max(1, n_planned) * 1e6, 2)}


def build_results(targets: list[int], state: dict, now: datetime, seed: int) -> tuple[list, dict]:
    """(claim id, ClaimStatusResult) per check, simulating what each portal read returns (outside the timer).
    An open claim: 60% unchanged re-read, 12% denied (CARC), 14% paid, 5% rejected, 9% a new pending status;
    a denial under appeal: 70% unchanged, 30% paid (the denial resolves); a finalized claim: unchanged."""
    rng = random.Random(seed)
    today = now.date()
    out, mix = [], {"unchanged": 0, "new_status": 0, "paid": 0, "denied": 0, "rejected": 0, "appeal_paid": 0}
    for k, cid in enumerate(targets):
        cat, code, appeal = state[cid]
        u = rng.random()
        if cat == "F2" and appeal:
            nxt, kind = (("F1", "65"), "appeal_paid") if u < 0.3 else ((cat, code), "unchanged")
        elif cat in ("F1", "F2", "A3"):
            nxt, kind = (cat, code), "unchanged"
        elif u < 0.60:
            nxt, kind = (cat, code), "unchanged"
        elif u < 0.72:
            nxt, kind = ("F2", "88"), "denied"
        elif u < 0.86:
            nxt, kind = ("F1", "65"), "paid"
        elif u < 0.91:
            nxt, kind = ("A3", REJECTIONS[_mix(cid, 12) % len(REJECTIONS)][0]), "rejected"
        else:
            nxt, kind = NEXT_OPEN[cat], "new_status"
        mix[kind] += 1
        state[cid] = (nxt[0], nxt[1], appeal and nxt[0] == "F2")
        at = now + timedelta(seconds=k)
        out.append((cid, ClaimStatusResult.model_validate(result_dict(claim_info(cid, today), nxt[0], nxt[1], at))))
    return out, mix


@dataclass
class Tally:
    """Recorded results of one (backend, size, commit mode), summed over its interleaved rounds."""

    batch: int
    per: list[float] = field(default_factory=list)  # seconds per result, per transaction
    wall: float = 0.0
    cpu: float = 0.0
    server_measured: bool = True
    changed: int = 0
    n: int = 0

    def summary(self) -> dict:
        per = sorted(self.per)
        return {"results": self.n, "batch": self.batch, "seconds": round(self.wall, 3),
                "per_result_ms": _ms(self.wall / self.n), "median_ms": _ms(statistics.median(per)),
                "p95_ms": _ms(per[max(0, int(len(per) * 0.95) - 1)]),
                "cpu_per_result_ms": _ms(self.cpu / self.n), "server_cpu_included": self.server_measured,
                "results_per_s": round(self.n / self.wall, 1), "changed": self.changed}


def record_all(b: Backend, cap: Capture, work: list, tally: Tally, run_id: int, phase: str) -> None:
    """Record every result as SweepRunner._record does (its fingerprint pre-check, then record_result, the
    claim's last_error cleared, commit), `tally.batch` results per transaction (1 = the agent today)."""
    Session = session_factory(b.engine)
    batch = tally.batch
    with cap.phase_of(phase), Meter(b) as m:
        for lo in range(0, len(work), batch):
            part = work[lo:lo + batch]
            tb = time.perf_counter()
            with Session() as s:
                for cid, r in part:
                    if batch == 1:
                        with Session() as s0:
                            _ = repo.last_fingerprint(s0, cid) != repo.fingerprint(r)  # the agent's pre-check
                    else:
                        _ = repo.last_fingerprint(s, cid) != repo.fingerprint(r)
                    claim = s.get(Claim, cid)
                    out = repo.record_result(s, claim, r, account_id=claim.payer_id, sweep_run_id=run_id,
                                             recheck_hours=RECHECK_HOURS)
                    claim.last_error = None
                    tally.changed += out.changed
                s.commit()
            tally.per.append((time.perf_counter() - tb) / len(part))
    tally.wall += m.wall
    tally.cpu += m.cpu
    tally.server_measured &= m.server_measured
    tally.n += len(work)


@dataclass
class Ctx:
    b: Backend
    n: int
    now: datetime
    cap: Capture = field(default_factory=Capture)
    due: dict = field(default_factory=dict)
    work: list = field(default_factory=list)
    mix: dict = field(default_factory=dict)
    run_id: int = 0
    rows: dict = field(default_factory=dict)
    load_s: float = 0.0


def prepare(ctx: Ctx, n_results: int, due_limit: int, seed: int, log) -> None:
    b = ctx.b
    event.listen(b.engine, "before_cursor_execute", ctx.cap.listener)
    ctx.due = time_due(b, ctx.cap, ctx.now, due_limit)
    log(f"[{b.name} {ctx.n:>9,}] claims_due(limit {due_limit}) {ctx.due['due_query_ms']:.2f} ms; _plan over "
        f"{ctx.due['due_total']:,} due claims {ctx.due['plan_ms']:.0f} ms ({ctx.due['plan_us_per_claim']} us/claim)")
    # the claims checked: those the scheduler keeps checking (next_check_at set), in random order;
    # at small sizes the list cycles (successive sweeps re-read the same claims)
    Session = session_factory(b.engine)
    with Session() as s:
        rows = s.execute(select(Claim.id, Claim.status_category, Claim.status_code, Claim.appeal_open)
                         .where(Claim.next_check_at.is_not(None))).all()
        run = SweepRun(trigger="bench", started_at=ctx.now, status="running", counts={})
        s.add(run)
        s.commit()
        ctx.run_id = run.id
    state = {r[0]: (r[1], r[2], bool(r[3])) for r in rows}
    pool = sorted(state)
    random.Random(seed).shuffle(pool)
    targets = [pool[k % len(pool)] for k in range(2 * n_results)]
    ctx.work, ctx.mix = build_results(targets, state, ctx.now + timedelta(minutes=1), seed)


def finish(ctx: Ctx, one: Tally, batched: Tally) -> dict:
    b = ctx.b
    event.remove(b.engine, "before_cursor_execute", ctx.cap.listener)
    with b.engine.connect() as c:  # every result is there: one observation each, on top of the history
        new_obs = c.execute(text("SELECT count(*) FROM status_observations WHERE sweep_run_id = :r"),
                            {"r": ctx.run_id}).scalar()
    if new_obs != one.n + batched.n:
        raise AssertionError(f"{new_obs} observations recorded for {one.n + batched.n} results")
    return {"backend": b.name, "claims": ctx.n, "rows": ctx.rows, "load_s": round(ctx.load_s, 2), "due": ctx.due,
            "mix": ctx.mix, "one_per_txn": one.summary(), "batched": batched.summary(),
            "plans": explain_all(b, ctx.cap)}


def run(sizes: list[int], n_results: int, pg: str | None, batch: int = 50, due_limit: int = 2000,
        seed: int = 7, rounds: int = 10, log=print) -> dict:
    """Load every size on every backend, then record in interleaved rounds (each round records a slice on
    every store in turn), so that load from other processes on this machine falls on all sizes alike."""
    now = datetime.now(UTC).replace(microsecond=0)
    check_result_model(now.date(), now)
    report: dict = {"sizes": sizes, "results": n_results, "batch": batch, "runs": [], "pg": None}
    use_pg = False
    if pg:
        why = pg_reachable(pg)
        report["pg"] = f"unreachable: {why}" if why else "used"
        use_pg = not why
        if why:
            log(f"PostgreSQL not reachable ({why}): SQLite only")
    ctxs: list[Ctx] = []
    try:
        for n in sizes:
            backends: list[Backend] = [SqliteBackend(n)]
            ctxs.append(Ctx(backends[0], n, now))
            if use_pg:
                backends.append(PostgresBackend(pg, n))
                ctxs.append(Ctx(backends[1], n, now))
            for b in backends:
                b.engine = b.make_engine()
                migrate(b.engine)
                load_reference(b, now)
            counts, gen_s, load_s = bulk_load(backends, n, now, progress=log)
            total = sum(counts.values())
            log(f"[{n:>9,} claims] generated {total:,} rows in {gen_s:.1f}s; loaded: "
                + ", ".join(f"{k} {v:.1f}s ({total / v:,.0f} rows/s)" for k, v in load_s.items()) + f"; {counts}")
            for c in ctxs[-len(backends):]:
                c.rows, c.load_s = counts, load_s[c.b.name]
        for c in ctxs:
            prepare(c, n_results, due_limit, seed, log)
        tallies = {id(c): (Tally(1), Tally(batch)) for c in ctxs}
        step = max(batch, -(-n_results // rounds // batch) * batch)
        for lo in range(0, n_results, step):
            for c in ctxs:
                record_all(c.b, c.cap, c.work[lo:min(lo + step, n_results)], tallies[id(c)][0], c.run_id,
                           "record_result")
        for lo in range(0, n_results, step):
            for c in ctxs:
                record_all(c.b, c.cap, c.work[n_results + lo:n_results + min(lo + step, n_results)],
                           tallies[id(c)][1], c.run_id, "record_result_batched")
        for c in ctxs:
            r = finish(c, *tallies[id(c)])
            o, bt = r["one_per_txn"], r["batched"]
            log(f"[{c.b.name} {c.n:>9,}] record_result 1/txn: {o['per_result_ms']:.3f} ms/result wall (median "
                f"{o['median_ms']:.3f}), {o['cpu_per_result_ms']:.3f} ms CPU; {batch}/txn: "
                f"{bt['per_result_ms']:.3f} ms wall, {bt['cpu_per_result_ms']:.3f} ms CPU")
            report["runs"].append(r)
    finally:
        for c in ctxs:
            c.b.close()
    report["checks"] = checks(report)
    return report


def checks(report: dict) -> dict:
    """Per backend: cost at the largest size / at the smallest <= 2, on the median wall time per result (the
    rounds interleave the sizes, and the median keeps a burst of load from other processes out); the mean and
    the CPU ratio (this process + the database server) are reported beside it. And no full scan."""
    out: dict = {"scaling": {}, "full_scans": []}
    for be in sorted({r["backend"] for r in report["runs"]}):
        runs = sorted((r for r in report["runs"] if r["backend"] == be), key=lambda r: r["claims"])
        lo, hi = runs[0], runs[-1]
        for mode in ("one_per_txn", "batched"):
            med = hi[mode]["median_ms"] / lo[mode]["median_ms"]
            out["scaling"][f"{be}.{mode}"] = {
                "small": lo["claims"], "large": hi["claims"], "median_ratio": round(med, 2),
                "mean_ratio": round(hi[mode]["per_result_ms"] / lo[mode]["per_result_ms"], 2),
                "cpu_ratio": round(hi[mode]["cpu_per_result_ms"] / lo[mode]["cpu_per_result_ms"], 2),
                "server_cpu_included": hi[mode]["server_cpu_included"], "ok": med <= 2.0}
        # claims_due returns min(limit, due) rows: compare the time per claim returned
        ratio = ((hi["due"]["due_query_ms"] / max(1, hi["due"]["due_returned"]))
                 / (lo["due"]["due_query_ms"] / max(1, lo["due"]["due_returned"])))
        out["scaling"][f"{be}.claims_due"] = {"small": lo["claims"], "large": hi["claims"], "median_ratio": None,
                                              "mean_ratio": round(ratio, 2), "cpu_ratio": None, "ok": ratio <= 2.0,
                                              "per": "claim returned"}
        for r in runs:
            for p in r["plans"]:
                for ln in p["full_scans"]:
                    out["full_scans"].append(f"{be} {r['claims']} {p['phase']}: {ln} <- {p['sql'][:120]}")
    out["ok"] = all(v["ok"] for v in out["scaling"].values()) and not out["full_scans"]
    return out


def print_report(report: dict) -> None:
    print(f"\n== per-result cost, ms (1/txn = one transaction per result, as the agent records today; "
          f"batch = {report['batch']} per transaction; wall mean, median, p95; CPU = this process + its "
          f"database server processes, mean)")
    print(f"{'backend':<11} {'claims':>9} {'rows':>11} {'load s':>7} {'due ms':>7} {'plan ms':>8} {'due n':>7} "
          f"{'1/txn':>7} {'median':>7} {'p95':>7} {'CPU':>7} {'batch':>7} {'median':>7} {'CPU':>7}")
    for r in report["runs"]:
        o, bt = r["one_per_txn"], r["batched"]
        print(f"{r['backend']:<11} {r['claims']:>9,} {sum(r['rows'].values()):>11,} {r['load_s']:>7.1f} "
              f"{r['due']['due_query_ms']:>7.2f} {r['due']['plan_ms']:>8.0f} {r['due']['due_total']:>7,} "
              f"{o['per_result_ms']:>7.3f} {o['median_ms']:>7.3f} {o['p95_ms']:>7.3f} {o['cpu_per_result_ms']:>7.3f} "
              f"{bt['per_result_ms']:>7.3f} {bt['median_ms']:>7.3f} {bt['cpu_per_result_ms']:>7.3f}")
    if report["runs"]:
        print(f"result mix of the first run ({report['results']} x2 results): {report['runs'][0]['mix']}")
    print("\n== query plans of the hot statements (largest size per backend)")
    largest: dict = {}
    for r in report["runs"]:
        if r["claims"] >= largest.get(r["backend"], {"claims": -1})["claims"]:
            largest[r["backend"]] = r
    for be, r in largest.items():
        print(f"-- {be} at {r['claims']:,} claims")
        for p in r["plans"]:
            print(f"[{p['phase']}] {p['sql'][:240]}")
            for ln in p["plan"] or ["(no plan rows)"]:
                print(f"    {ln}")
    c = report["checks"]
    print("\n== checks")
    for k, v in c["scaling"].items():
        med = f"per {v['per']} " if v.get("per") else f"median x{v['median_ratio']:.2f}, "
        cpu = "" if v["cpu_ratio"] is None else f", CPU x{v['cpu_ratio']:.2f}"
        print(f"{k:<32} cost at {v['large']:,} claims vs {v['small']:,}: {med}mean x{v['mean_ratio']:.2f}{cpu}  "
              f"{'ok (<= 2x)' if v['ok'] else 'FAIL (> 2x)'}")
    print(f"full scans of large tables in the hot path: {len(c['full_scans'])}")
    for ln in c["full_scans"]:
        print(f"    {ln}")
    print(f"PostgreSQL: {report['pg'] or 'not asked'}")
    print("ALL CHECKS OK" if c["ok"] else "SOME CHECKS FAILED")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--results", type=int, default=10000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--due-limit", type=int, default=2000, help="claims a sweep takes per run")
    p.add_argument("--pg", default=os.environ.get("PORTAL_AGENT_BENCH_PG", DEFAULT_PG))
    p.add_argument("--no-pg", action="store_true")
    p.add_argument("--json", help="also write the report as JSON here")
    p.add_argument("--from-json", help="print the report of an earlier run (its JSON) again, checks recomputed")
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still drops its schemas and files
    if a.from_json:
        with open(a.from_json) as f:
            report = json.load(f)
        report["checks"] = checks(report)
        print_report(report)
        return 0 if report["checks"]["ok"] else 1
    report = run([int(x) for x in a.sizes.split(",")], a.results, None if a.no_pg else a.pg, a.batch,
                 a.due_limit, log=lambda m: print(m, flush=True))
    print_report(report)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    return 0 if report["checks"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
