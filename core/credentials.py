"""Portal account credentials, as the vault hands them to an adapter (never logged, never in a repr)."""

from __future__ import annotations

import pyotp
from pydantic import BaseModel, Field

from core.errors import NeedsAttention


class Credentials(BaseModel):
    username: str
    password: str = Field(repr=False)
    totp_secret: str | None = Field(default=None, repr=False)

    def authenticator(self) -> pyotp.TOTP | None:
        """The authenticator app for `totp_secret` (None when no secret is on file). A secret that cannot
        make codes is NeedsAttention: a person must fix the account, and no sign-in is tried with it."""
        if not self.totp_secret:
            return None
        try:
            totp = pyotp.TOTP(self.totp_secret)
            totp.now()
        except (ValueError, TypeError) as e:  # binascii.Error is a ValueError
            raise NeedsAttention("the authenticator secret on file is not usable") from e
        return totp
