"""Which account reads which claims (`plan`), and each account's job queue: the lookup slots of one session
keep taking the claims their page is set up for (`JobQueue`, keyed by the adapter's `affinity`)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.claims import ClaimQuery
from store import repo
from store.models import Claim, Organization, Payer, PortalAccount


@dataclass
class Job:
    claim_id: int
    query: ClaimQuery


def plan(s, *, now: datetime, limit: int, portal_key: str | None, claim_ids: list[int] | None
         ) -> list[tuple[PortalAccount, list[Job]]]:
    """The due claims (at most `limit`; or `claim_ids`), of `portal_key` or every portal, by account: an
    organization's claims of one portal go round-robin over its accounts on that portal (not disabled)."""
    if claim_ids is not None:
        claims = repo.claims_by_ids(s, claim_ids)
    else:
        claims = repo.claims_due(s, now=now, limit=limit)
    payers = repo.payers_by_id(s)
    orgs = repo.orgs_by_id(s)
    accounts: dict[tuple[int, str], list[PortalAccount]] = {}
    for a in repo.portal_accounts(s):
        if a.status != "disabled":
            accounts.setdefault((a.org_id, a.portal_key), []).append(a)
    by_account: dict[int, tuple[PortalAccount, list[Job]]] = {}
    rr: Counter = Counter()
    for c in claims:
        payer = payers[c.payer_id]
        if portal_key and payer.portal_key != portal_key:
            continue
        candidates = accounts.get((c.org_id, payer.portal_key))
        if not candidates:
            continue
        acct = candidates[rr[(c.org_id, payer.portal_key)] % len(candidates)]
        rr[(c.org_id, payer.portal_key)] += 1
        by_account.setdefault(acct.id, (acct, []))[1].append(Job(c.id, claim_query(c, payer, orgs[c.org_id])))
    return list(by_account.values())


def claim_query(c: Claim, payer: Payer, org: Organization) -> ClaimQuery:
    return ClaimQuery(claim_ref=c.external_id, payer_key=payer.key, payer_claim_number=c.payer_claim_number,
                      member_id=c.member_id, patient_dob=c.patient_dob,
                      patient_first_name=c.patient_first_name, patient_last_name=c.patient_last_name,
                      dos_from=c.dos_from, dos_to=c.dos_to, billing_npi=c.billing_npi,
                      billed=Decimal(c.billed_cents) / 100, org_external_id=org.external_id)


def affinity(adapter, q: ClaimQuery) -> Hashable | None:
    """What a page must be set up for to look this claim up without reloading (the adapter's
    `affinity(query)`, e.g. organization and payer); None when the adapter does not care."""
    fn = getattr(adapter, "affinity", None)
    return fn(q) if fn is not None else None


class JobQueue:
    """An account's jobs, in plan order within each affinity group. A worker takes next a job of the
    group its page was last set up for; otherwise the first job of the group with the most jobs left, so
    the workers spread over the groups and each page reloads as rarely as possible."""

    def __init__(self, jobs: list[Job], key: Callable[[Job], Hashable | None]) -> None:
        self._groups: dict[Hashable | None, deque[Job]] = {}
        for j in jobs:
            self._groups.setdefault(key(j), deque()).append(j)
        self._taken: Counter = Counter()  # workers currently set up for each group (spread them out)

    def take(self, last: Hashable | None = None) -> Job | None:
        if last in self._groups and self._groups[last]:
            return self._next(last)
        if last is not None:
            self._taken[last] -= 1
        left = [k for k, q in self._groups.items() if q]
        if not left:
            return None
        # the group with the most jobs per worker already on it
        k = max(left, key=lambda k: len(self._groups[k]) / (1 + self._taken[k]))
        self._taken[k] += 1
        return self._next(k)

    def _next(self, k: Hashable | None) -> Job:
        job = self._groups[k].popleft()
        if not self._groups[k]:
            del self._groups[k]
        return job
