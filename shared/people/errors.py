"""The admin routes' refusals of a list or a suppression request, apart so the admin function names them without
importing the lists' and suppression's modules (and the storage layer under them) before a route needs them."""

from __future__ import annotations


class AdminError(ValueError):
    """An admin request parcours refuses: `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SuppressionRequestError(ValueError):
    """An operator's request parcours refuses: `status` is the HTTP answer, the message names the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
