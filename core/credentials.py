"""Portal account credentials, as the vault hands them to an adapter (never logged, never in a repr)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Credentials(BaseModel):
    username: str
    password: str = Field(repr=False)
    totp_secret: str | None = Field(default=None, repr=False)
