"""The admin routes' refusals of a list or a suppression request, apart so the admin function names them without
importing the lists' and suppression's modules (and the storage layer under them) before a route needs them."""

from __future__ import annotations


class AdminError(ValueError):
    """An admin request parcours refuses: `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SuppressionRequestError(AdminError):
    """A suppression request refused (the admin function logs it as such: its handler is the more specific)."""
