"""The one exception the simulator raises for a controller error answer."""

from __future__ import annotations


class ApiError(Exception):
    """An error the controller answers with: JSON `{"error": msg}` unless `plain` (CSRF failures are text)."""

    def __init__(self, status: int, message: str, *, plain: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.plain = plain


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
