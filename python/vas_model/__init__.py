"""The VAS model SDK for Python: take frames from Ruth, compute, answer.

Ruth connects to the model's Unix socket once per subscription and sends one JSON line per
frame: a reference to a frame in the shared-memory export (camera, root, generation, slot,
sequence, frame id, pts, geometry). The model reads the frame itself with vas_frames (as
numpy arrays), computes, and answers with one JSON line echoing the request id. The protocol
is vas-model(7).

    from vas_model import serve

    class Brightness:
        def process(self, frame):              # one instance per subscription
            return {"mean_luma": float(frame.y.mean())}

    serve("/run/vas/models/brightness.sock", Brightness)

Raise an exception (or return ``vas_model.Error("why")``) for a frame the model cannot handle:
Ruth counts the error and goes on. The example model is ``python3 -m vas_model.example``.
Needs the standard library, numpy and vas_frames.
"""

from .protocol import (
    DEFAULT_MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES,
    PROTOCOL_VERSION,
    Error,
    FrameRequest,
    error_line,
    parse_request,
    result_line,
)
from .server import Frame, ModelServer, serve, serve_connection

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
    "PROTOCOL_VERSION",
    "Error",
    "Frame",
    "FrameRequest",
    "ModelServer",
    "error_line",
    "parse_request",
    "result_line",
    "serve",
    "serve_connection",
]
