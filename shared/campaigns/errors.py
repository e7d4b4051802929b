"""The admin routes' refusal of a campaign request, apart so the admin function names it without importing the
sending code."""

from __future__ import annotations


class CampaignRequestError(ValueError):
    """A request the admin route refuses: `status` is the HTTP answer, `field` the body's field when one is at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field
