"""A denial case's work states and the moves between them (shared/DESIGN.md §5). Pure.

    new -> assigned -> in_progress -> corrected_resubmitted | appealed -> won | partially_won | lost
    any open state -> written_off (with a reason)

A rejection never entered adjudication: it is corrected and resubmitted, never appealed. A lost appeal may
go to the next level (appealed again) or be written off. won, partially_won and written_off are final.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    CORRECTED_RESUBMITTED = "corrected_resubmitted"
    APPEALED = "appealed"
    WON = "won"
    PARTIALLY_WON = "partially_won"
    LOST = "lost"
    WRITTEN_OFF = "written_off"


FINAL = frozenset({State.WON, State.PARTIALLY_WON, State.WRITTEN_OFF})
OUTCOMES = frozenset({State.WON, State.PARTIALLY_WON, State.LOST})

_MOVES: dict[State, frozenset[State]] = {
    State.NEW: frozenset({State.ASSIGNED, State.WRITTEN_OFF}),
    State.ASSIGNED: frozenset({State.ASSIGNED, State.IN_PROGRESS, State.WRITTEN_OFF}),  # reassigned
    State.IN_PROGRESS: frozenset({State.CORRECTED_RESUBMITTED, State.APPEALED, State.WRITTEN_OFF}),
    State.CORRECTED_RESUBMITTED: frozenset({State.WON, State.PARTIALLY_WON, State.LOST, State.WRITTEN_OFF}),
    State.APPEALED: frozenset({State.WON, State.PARTIALLY_WON, State.LOST, State.WRITTEN_OFF}),
    State.LOST: frozenset({State.APPEALED, State.WRITTEN_OFF}),  # the next appeal level, or give up
    State.WON: frozenset(),
    State.PARTIALLY_WON: frozenset(),
    State.WRITTEN_OFF: frozenset(),
}

WRITE_OFF_REASONS = frozenset({"timely_filing_missed", "not_appealable", "below_threshold", "patient_responsibility",
                               "contractual", "appeal_exhausted", "other"})


class IllegalTransition(ValueError):
    """A move the workflow does not allow; the message names both states."""


def parse_state(value: str, field: str = "state") -> State:
    try:
        return State(value)
    except ValueError:
        raise IllegalTransition(f"{field}: {value!r} is not a state ({', '.join(s.value for s in State)})") from None


def check_move(kind: str, current: str, target: str, *, reason: str | None = None) -> State:
    """The target state when `current -> target` is allowed for a case of `kind`, else IllegalTransition."""
    frm, to = parse_state(current, "from"), parse_state(target, "to")
    if to not in _MOVES[frm]:
        raise IllegalTransition(f"a case cannot go from '{frm}' to '{to}'"
                                + (" (it is final)" if frm in FINAL else ""))
    if kind == "rejection" and to in (State.APPEALED, State.LOST):
        raise IllegalTransition(f"a rejection cannot go from '{frm}' to '{to}': it was never adjudicated; "
                                "correct and resubmit it")
    if to is State.WRITTEN_OFF and reason not in WRITE_OFF_REASONS:
        raise IllegalTransition(f"'{frm}' to 'written_off' needs a reason ({', '.join(sorted(WRITE_OFF_REASONS))})")
    return to


def all_moves() -> dict[State, frozenset[State]]:
    return dict(_MOVES)
