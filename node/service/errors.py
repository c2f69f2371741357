"""The one error type of `Service` (node/service/api.py re-exports it)."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, code: str, message: str, object_code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # For invalid_object: the verdict code (docs/protocol.md §4) of the refused object.
        self.object_code = object_code
