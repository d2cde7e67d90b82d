"""The demo's glue: run the sandbox as a subprocess, onboard its world as a PMS would (organizations,
payers, providers, claims to track, portal accounts), and compare a sweep's findings with the sandbox's
ground truth. Talks to the sandbox only over HTTP (its control API), never by importing it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Collection
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from core.config import get_settings
from core.credentials import Credentials
from store import accounts as acct_repo
from store import cases, playbooks, queue, repo, work
from store.models import Organization, Payer

REPO = Path(__file__).resolve().parent.parent

class SandboxProcess:
    def __init__(self, size: int = 500, seed: int = 7, profile: str = "off", accounts: int = 4,
                 port_base: int = 0) -> None:
        self.args = [sys.executable, "-m", "fixtures", "--port-base", str(port_base), "--json",
                     "--size", str(size), "--seed", str(seed), "--profile", profile, "--accounts", str(accounts)]
        self.proc: subprocess.Popen | None = None
        self.urls: dict[str, str] = {}

    def __enter__(self) -> SandboxProcess:
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox did not start")
        self.urls = json.loads(line)["urls"]
        self.control = httpx.Client(base_url=self.urls["control"], timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        self.control.close()
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def knows_claim_number(claim_id: str) -> bool:
    """The PMS knows the payer claim number (from the 277CA/ERA) for most claims, not all."""
    return hashlib.sha256(claim_id.encode()).digest()[0] < 180


def ensure_payer(s, org, p: dict, rows: dict | None = None) -> Payer:
    """The organization's row for a sandbox payer (ground-truth `payers` entry), its playbook seeded from the
    public row the sandbox payer stands for (`playbook_row`; store/playbooks.py)."""
    row = repo.payer_for(s, org.id, p["id"])
    if row is None:
        row = Payer(org_id=org.id, key=p["id"], name=p["name"], portal_key=p["portal"],
                    typical_days_to_pay=p["typical_days_to_pay"])
        ref = p.get("playbook_row")
        if ref:
            rows = rows if rows is not None else playbooks.load_rows(get_settings().resolved_payer_deadlines_csv())
            public = rows.get((ref["payer"], ref["plan_type"]))
            if public is None:
                raise playbooks.PlaybookError(f"payer {p['id']}: no public row {ref['payer']} | {ref['plan_type']}")
            playbooks.apply(row, public)
        s.add(row)
        s.flush()
    return row


def onboard(Session, vault, control: httpx.Client, urls: dict[str, str],
            only: Collection[str] | None = None) -> dict:
    """The sandbox's submitted claims (or `only` those of these claim ids) and one portal account per
    organization and portal, as a PMS and an administrator would set them up."""
    gt = control.get("/control/ground-truth").json()
    accounts = control.get("/control/accounts").json()
    with Session() as s:
        orgs, claims = add_world(s, gt, only=only)
        counts = {"claims": claims, "accounts": 0, "people": sum(add_team(s, org) for org in orgs.values())}
        # one portal account per organization and portal (one login per account)
        for portal in ("clearinghouse", "commercial", "medicaid"):
            mine = [a for a in accounts if a["portal"] == portal]
            for i, org in enumerate(orgs.values()):
                add_account(s, vault, org, mine[i % len(mine)], urls)
                counts["accounts"] += 1
        s.commit()
    return counts


def add_world(s, gt: dict, *, only: Collection[str] | None = None,
              org_ids: Collection[str] | None = None) -> tuple[dict[str, Organization], int]:
    """The ground truth's organizations (or `org_ids` of them), their payers and providers, and their
    submitted claims (or `only` those of these claim ids) as the PMS sends them. Returns the organizations
    by sandbox id and how many claims were added."""
    orgs = {o["id"]: repo.get_or_create_org(s, o["id"], o["name"], o.get("time_zone")) for o in gt["organizations"]
            if org_ids is None or o["id"] in org_ids}
    rows = playbooks.load_rows(get_settings().resolved_payer_deadlines_csv())
    payers = {(org_key, p["id"]): ensure_payer(s, org, p, rows) for org_key, org in orgs.items() for p in gt["payers"]}
    npi_org = {p["npi"]: p["org_id"] for p in gt["providers"]}
    for p in gt["providers"]:
        if p["org_id"] in orgs:
            repo.get_or_create_provider(s, orgs[p["org_id"]], p["npi"], p["name"])
    members = {m["member_id"]: m for m in gt["members"]}
    added = 0
    for c in gt["claims"]:
        if not c["visible"]:
            continue  # not submitted yet on the sandbox clock: the PMS has not sent it
        org_key = npi_org[c["billing_npi"]]
        if org_key not in orgs or (only is not None and c["claim_id"] not in only):
            continue
        m = members[c["member_id"]]
        known = c["payer_claim_number"] if knows_claim_number(c["claim_id"]) else None
        repo.add_claim(
            s, org=orgs[org_key], payer=payers[(org_key, c["payer_id"])], external_id=c["pcn"],
            member_id=c["member_id"], billing_npi=c["billing_npi"], dos_from=date.fromisoformat(c["dos_from"]),
            dos_to=date.fromisoformat(c["dos_to"]), submitted_on=date.fromisoformat(c["submitted"]),
            payer_claim_number=known, patient_dob=date.fromisoformat(m["dob"]),
            patient_first_name=m["first_name"], patient_last_name=m["last_name"],
            lines=[{"line_no": ln["line_no"], "cpt": ln["cpt"], "modifiers": ln["modifiers"],
                    "units": ln["units"], "billed_cents": int(ln["billed"].replace(".", ""))}
                   for ln in c["lines"]])
        added += 1
    return orgs, added


# A billing team per practice, as an administrator would enter it: each role that owns denial work, a
# supervisor and a manager (store/workflow/routing.py routes cases to these roles, then to a person).
TEAM = (("Maya Ortiz", ["front_desk"]), ("Sam Lee", ["scheduler"]), ("Priya Shah", ["coder"]),
        ("Tom Becker", ["biller"]), ("Lena Park", ["biller"]), ("Dr. Omar Hale", ["clinician"]),
        ("Rosa Diaz", ["credentialing"]), ("Kim Nguyen", ["supervisor", "biller"]), ("Alex Moore", ["manager"]))


def add_team(s, org: Organization) -> int:
    """The practice's billing team (idempotent: nothing added when it has people)."""
    if work.people(s, org.id):
        return 0
    at = datetime.now(UTC)
    for name, roles in TEAM:
        work.add_person(s, org, name, roles, at=at)
    return len(TEAM)


def add_account(s, vault, org: Organization, a: dict, urls: dict[str, str]) -> None:
    """A sandbox portal account (`/control/accounts` entry) for an organization, its secrets to the vault."""
    acct_repo.upsert_account(s, vault, org_id=org.id, portal_key=a["portal"], base_url=urls[a["portal"]],
                             creds=Credentials(username=a["username"], password=a["password"],
                                               totp_secret=a["totp_secret"]))


def compare_with_truth(Session, control: httpx.Client) -> dict:
    """What the sweep stored vs what the sandbox says: statuses (the 277 category always, the status code where
    the portal's page shows one: `status_code_shown` of the ground truth), denied claims and their CARCs."""
    gt = {c["pcn"]: c for c in control.get("/control/ground-truth").json()["claims"] if c["visible"]}
    with Session() as s:
        claims = {c.external_id: c for c in repo.all_claims(s)}
        denials = repo.open_denials(s, kind="denial")
        open_cases = [(r.case, r.claim, r.payer) for o in repo.orgs_by_id(s).values()
                      for r in queue.all_open(s, o.id) if r.case.kind == "denial"]
        case_claims = {c.claim_id for c, _, _ in open_cases}
        # denials by payer and CARC, from the cases (a claim's CARC counted once)
        by_payer_carc = Counter((payer.key, code) for c, _, payer in open_cases
                                for code in {x["code"] for x in c.reasons})
        counts = cases.intake_counts(s)
    by_id = {c.id: c.external_id for c in claims.values()}
    checked = [k for k, c in claims.items() if c.status_category]
    status_ok = sum(1 for k in checked if claims[k].status_category == gt[k]["status_category"]
                    and claims[k].status_code == gt[k]["status_code_shown"])
    no_code = sum(1 for k in checked if claims[k].status_code is None)
    truth_denied = {k: set(v["denial_carcs"]) for k, v in gt.items() if v.get("denial_carcs")}
    found: dict[str, set] = {}
    for d in denials:
        found.setdefault(by_id[d.claim_id], set()).add(d.reason_code)
    truth_checked = {k: v for k, v in truth_denied.items() if k in checked}
    return {
        "claims": len(claims),
        "checked": len(checked),
        "status_matches": status_ok,
        "statuses_without_code": no_code,  # the page showed none: none stored
        "truth_denied_claims": len(truth_checked),
        "found_denied_claims": len(found),
        "carc_sets_match": found == truth_checked,
        "truth_carcs": sorted({x for v in truth_checked.values() for x in v}),
        "found_carcs": sorted({x for v in found.values() for x in v}),
        # denial cases: one per denied claim, each categorized, routed and clocked on arrival
        "cases": counts,
        "case_claims_match": {by_id[i] for i in case_claims} == set(truth_checked),
        "by_payer_carc": dict(sorted((f"{p}/{code}", n) for (p, code), n in by_payer_carc.items())),
        "by_payer_carc_match": by_payer_carc == Counter((gt[k]["payer_id"], code) for k, v in truth_checked.items()
                                                        for code in v),
    }
