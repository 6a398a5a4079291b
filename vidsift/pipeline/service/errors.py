"""The HTTP service's error: raised by any route (http, web) and answered as JSON
{"error": message} with its status."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)
