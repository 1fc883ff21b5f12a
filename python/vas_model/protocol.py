"""The Ruth model protocol, version 1 (vas-model(7)): request parsing and reply lines."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

PROTOCOL_VERSION = 1
FRAME_REQUEST = "frame"
FORMAT_NV12 = "nv12"
# Longest request line Ruth sends, newline included.
MAX_REQUEST_BYTES = 16 * 1024
# Longest reply line Ruth accepts unless ruth.toml says otherwise ([[model]] max_reply_bytes).
DEFAULT_MAX_REPLY_BYTES = 1024 * 1024


class Error(Exception):
    """A frame the model cannot handle: becomes an error reply, the connection goes on."""


class FrameRequest(NamedTuple):
    """One request line: a reference to a frame in the export."""

    v: int
    type: str
    id: int
    camera: str
    root: str
    generation: int
    slot: int
    sequence: int
    frame_id: int
    pts_ns: int
    wall_ns: int
    mono_ns: int
    width: int
    height: int
    stride_y: int
    stride_uv: int
    format: str
    key_frame: bool
    deadline_ms: int

    def unsupported(self):
        """Why a version 1 model cannot serve this request, or None."""
        if self.v != PROTOCOL_VERSION:
            return (f"protocol version {self.v} is not supported: this model speaks version "
                    f"{PROTOCOL_VERSION}")
        if self.type != FRAME_REQUEST:
            return f"unknown request type {self.type!r}"
        if self.format != FORMAT_NV12:
            return f"unknown pixel format {self.format!r}"
        return None


def parse_request(line: bytes) -> FrameRequest:
    """Parses one request line (with or without its newline). Unknown fields are ignored, so
    a newer Ruth that adds fields still works. Raises ValueError on anything else."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("a request is a JSON object")
    try:
        return FrameRequest(**{name: obj[name] for name in FrameRequest._fields})
    except KeyError as missing:
        raise ValueError(f"a request lacks the field {missing}") from None


def result_line(request_id: int, result: Any) -> bytes:
    """The reply carrying a result: any JSON value, usually an object."""
    return (json.dumps({"id": request_id, "result": result}, separators=(",", ":"),
                       allow_nan=False) + "\n").encode()


def error_line(request_id: int, message: str) -> bytes:
    """The reply carrying an error message."""
    return (json.dumps({"id": request_id, "error": str(message)}, separators=(",", ":"))
            + "\n").encode()
