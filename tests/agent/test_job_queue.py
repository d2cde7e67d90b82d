"""The account's job queue: each lookup slot keeps taking claims its page is set up for."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from agent.sweep import _JobQueue


@dataclass
class J:
    claim_id: int
    key: str


def _jobs(spec: str) -> list[J]:
    return [J(i, k) for i, k in enumerate(spec)]


def test_a_slot_keeps_its_group_then_moves_to_the_largest_left():
    q = _JobQueue(_jobs("AABBBBBC"), key=lambda j: j.key)
    first = q.take(None)
    assert first.key == "B"  # the largest group first
    assert q.take("B").key == "B"  # the same group while it has jobs
    assert [j.claim_id for j in (q.take("A"), q.take("A"))] == [0, 1]  # plan order within a group
    assert q.take("A").key == "B"  # group A done: to the group with the most jobs per slot on it


def test_slots_spread_over_groups_and_every_job_is_taken_once():
    jobs = _jobs("ABCABCABCAAB")
    q = _JobQueue(jobs, key=lambda j: j.key)
    starts = [q.take(None) for _ in range(3)]
    assert {j.key for j in starts} == {"A", "B", "C"}  # three slots, three groups: no slot reloads at once
    taken = list(starts)
    last = [j.key for j in starts]
    switches = 0
    while True:
        progressed = False
        for i in range(3):
            j = q.take(last[i])
            if j is None:
                continue
            switches += j.key != last[i]
            last[i] = j.key
            taken.append(j)
            progressed = True
        if not progressed:
            break
    assert Counter(j.claim_id for j in taken) == Counter(range(len(jobs)))
    assert switches <= 2


def test_no_affinity_keeps_plan_order():
    q = _JobQueue(_jobs("xxxx"), key=lambda j: None)
    assert [q.take(None).claim_id for _ in range(4)] == [0, 1, 2, 3]
    assert q.take(None) is None
