"""The HTTP service's error: raised by any route (http, web) and answered as JSON
{"error": message} with its status; and how the routes document their responses in the OpenAPI
schema (error bodies, files)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


class ErrorBody(BaseModel):
    """Every error's body: {"error": message, ...}; never a stack trace."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(..., description="what went wrong, naming the input at fault")


class ValidationErrorBody(ErrorBody):
    details: list[str] = Field(..., description="one 'field: problem' message per invalid input")


ERROR_STATUSES = {
    400: "bad input the schema cannot express (a body that is not UTF-8 JSON, a video or image "
         "that cannot be read, no clip index yet, ...)",
    401: "missing or wrong API key (X-API-Key header)",
    403: "a path outside the media roots, or a file there that is not a video",
    404: "no such job, conversation, thumbnail, subtitles or video",
    413: "the body is larger than the route accepts",
    416: "the Range header starts past the end of the file",
    422: "the request does not match this schema",
}


def error_responses(*statuses: int) -> dict[int, dict[str, Any]]:
    """A route's `responses=` for the error statuses it returns, each with its body model."""
    return {status: {"model": ValidationErrorBody if status == 422 else ErrorBody,
                     "description": ERROR_STATUSES[status]} for status in statuses}


def file_responses(description: str, media_types: list[str] | tuple[str, ...],
                   *statuses: int) -> dict[int, dict[str, Any]]:
    """`responses=` of a route that answers with a file: each status in statuses (200 when none
    is given) in those media types, with no JSON schema."""
    return {status: {"description": description, "content": {kind: {} for kind in media_types}}
            for status in statuses or (200,)}
