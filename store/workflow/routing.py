"""Who works a denial case: root-cause bucket -> owner role (shared/DESIGN.md §5), configurable per
organization. Pure: the store applies it on intake and keeps every (re)assignment in the case's history."""

from __future__ import annotations

from collections.abc import Mapping

from core.roles import PEOPLE_ROLES, Role
from store.workflow.categorize import Bucket

DEFAULT_OWNER_ROLES: dict[Bucket, Role] = {
    Bucket.ELIGIBILITY: Role.FRONT_DESK,
    Bucket.COORDINATION_OF_BENEFITS: Role.FRONT_DESK,
    Bucket.AUTHORIZATION: Role.SCHEDULER,
    Bucket.DEMOGRAPHIC: Role.FRONT_DESK,
    Bucket.CODING: Role.CODER,
    Bucket.DOCUMENTATION: Role.CODER,  # with the clinician's notes
    Bucket.MEDICAL_NECESSITY: Role.CLINICIAN,  # peer-to-peer, letter of medical necessity
    Bucket.TIMELY_FILING: Role.BILLER,
    Bucket.DUPLICATE: Role.BILLER,
    Bucket.CREDENTIALING: Role.CREDENTIALING,
    Bucket.NON_COVERED: Role.BILLER,
    Bucket.OTHER: Role.BILLER,
}


class RoutingError(ValueError):
    """An organization's routing table names an unknown bucket or role (names the field)."""


def owner_role(bucket: Bucket, overrides: Mapping[str, str] | None = None) -> Role:
    """The role that owns a case of `bucket`: the organization's choice, else the default."""
    if overrides and bucket.value in overrides:
        return parse_role(overrides[bucket.value], f"routing.{bucket.value}")
    return DEFAULT_OWNER_ROLES[bucket]


def parse_role(value: str, field: str) -> Role:
    try:
        role = Role(value)
    except ValueError:
        raise RoutingError(f"{field}: {value!r} is not a role ({', '.join(sorted(PEOPLE_ROLES))})") from None
    if role not in PEOPLE_ROLES:
        raise RoutingError(f"{field}: cases go to people, not to the {role} role")
    return role
