"""The HTTP service's error: raised by any route (http, web) and answered as JSON
{"error": message} with its status; the file response whose range refusals are such errors too;
and how the routes document their responses in the OpenAPI schema (error bodies, files)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import FileResponse


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
         "that cannot be read, no clip index yet, a malformed Range, ...)",
    401: "missing or wrong API key (X-API-Key header)",
    403: "a path outside the media roots, or a file there that is not a video",
    404: "no such job, conversation, thumbnail, subtitles or video",
    409: "the job has not succeeded (yet): what is asked of it comes once it has",
    413: "the body is larger than the route accepts",
    415: "the body's Content-Type is not one the route takes",
    416: "the Range header starts past the end of the file",
    422: "the request does not match this schema",
}


def error_responses(*statuses: int) -> dict[int, dict[str, Any]]:
    """A route's `responses=` for the error statuses it returns, each with its body model."""
    return {status: {"model": ValidationErrorBody if status == 422 else ErrorBody,
                     "description": ERROR_STATUSES[status]} for status in statuses}


# Every file route answers Range requests (a <video> element seeks with them).
RANGE_HEADER = {"parameters": [{
    "name": "Range", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "bytes=START-END[, ...]: part of the file (206; several parts as "
                   "multipart/byteranges)"}]}


def file_responses(description: str, media_types: list[str] | tuple[str, ...],
                   *error_statuses: int) -> dict[int, dict[str, Any]]:
    """`responses=` of a route that answers with a FileWithJsonErrors: the whole file (200) or
    the ranges asked (206) in those media types with no JSON schema, a refused Range (400, 416),
    and error_statuses."""
    whole = {kind: {} for kind in media_types}
    return {200: {"description": description, "content": whole},
            206: {"description": f"part of it: {description}",
                  "content": {**whole, "multipart/byteranges": {}}},
            **error_responses(400, 416, *error_statuses)}


class FileWithJsonErrors(FileResponse):
    """A file, whole or in the ranges a Range header asks for (Starlette's FileResponse), whose
    refusal of that header (416 past the end, 400 malformed) is a JSON {"error": ...} like every
    other error of the service: Starlette writes it as plain text."""

    async def __call__(self, scope, receive, send) -> None:
        refusal: dict[str, Any] = {}

        async def send_refusal_as_json(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                refusal.update(message)  # sent below, once its text is known
                return
            if refusal and message["type"] == "http.response.body":
                asked = dict(scope["headers"]).get(b"range", b"").decode("latin-1")
                reason = message.get("body", b"").decode().rstrip(".") or \
                    "it starts past the end of the file"
                body = json.dumps({"error": f"Range {asked!r}: {reason}"}).encode()
                kept = [(name, value) for name, value in refusal["headers"]
                        if name.lower() not in (b"content-type", b"content-length")]
                await send({**refusal, "headers": [*kept, (b"content-type", b"application/json"),
                                                   (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await super().__call__(scope, receive, send_refusal_as_json)
