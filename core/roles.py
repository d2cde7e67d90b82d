"""One role list for the whole product: the people of an organization carry these roles, denial cases are
routed to them, and the API's keys carry the same roles (plus `service`, the PMS's integration)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SUPERVISOR = "supervisor"
    BILLER = "biller"
    CODER = "coder"
    FRONT_DESK = "front_desk"
    SCHEDULER = "scheduler"
    CLINICIAN = "clinician"
    CREDENTIALING = "credentialing"
    SERVICE = "service"  # an integration (the PMS), never a person


PEOPLE_ROLES = frozenset(Role) - {Role.SERVICE}
