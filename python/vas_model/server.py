"""The model side of the protocol: listen, serve each Ruth connection on a thread, read each
requested frame from the export with vas_frames, run the model, answer."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
import time
from typing import Callable, Optional

from vas_frames import ExportReader, FrameRef, FramesError

from .protocol import MAX_REQUEST_BYTES, Error, FrameRequest, error_line, parse_request


class Frame:
    """A frame copied out of the export and validated: exactly what vasd published.

    ``y`` is a (height, width) uint8 array, ``uv`` a (ceil(height/2), ceil(width/2), 2) uint8
    array of U and V; ``meta`` the record fields (frame_id, pts_ns, wall_ns, mono_ns,
    key_frame, ...); ``request`` the FrameRequest Ruth sent; ``received_mono_ns`` when the
    request was read, on the clock of ``meta["mono_ns"]``.

    A model whose class sets ``in_place = True`` gets ``y`` and ``uv`` as read-only views of
    the mapped slot instead of copies (no copy of the frame at all); the server checks after
    ``process`` that vasd did not overwrite the slot meanwhile and answers an error instead of
    the result if it did. Such a model must not keep the arrays after ``process`` returns.
    """

    __slots__ = ("request", "meta", "y", "uv", "received_mono_ns")

    def __init__(self, request: FrameRequest, meta: dict, y, uv, received_mono_ns: int) -> None:
        self.request = request
        self.meta = meta
        self.y = y
        self.uv = uv
        self.received_mono_ns = received_mono_ns

    @property
    def camera(self) -> str:
        return self.request.camera

    @property
    def frame_id(self) -> int:
        return self.meta["frame_id"]

    @property
    def pts_ns(self) -> int:
        return self.meta["pts_ns"]

    @property
    def width(self) -> int:
        return self.meta["width"]

    @property
    def height(self) -> int:
        return self.meta["height"]


class _FrameSource:
    """One connection's attachment to the export, re-made when a request names another
    camera, root or generation."""

    def __init__(self) -> None:
        self.reader: Optional[ExportReader] = None

    def _attach(self, req: FrameRequest) -> None:
        r = self.reader
        if r is None or r.camera != req.camera or r.root != req.root or r.generation != req.generation:
            if r is not None:
                r.close()
                self.reader = None
            self.reader = ExportReader(req.root, req.camera)

    def read(self, req: FrameRequest):
        self._attach(req)
        got = self.reader.read_ref(FrameRef(req.generation, req.slot, req.sequence, req.frame_id))
        if got is None:
            if self.reader.generation != req.generation:
                raise Error(f"the frame is from generation {req.generation}, the export is at "
                            f"generation {self.reader.generation}")
            raise Error("the frame was overwritten before it was read (lapped or torn): skipped")
        return got

    def view(self, req: FrameRequest):
        """``read`` without the copy: views of the slot, valid while ``still_valid``."""
        self._attach(req)
        if self.reader.generation != req.generation:
            raise Error(f"the frame is from generation {req.generation}, the export is at "
                        f"generation {self.reader.generation}")
        got = self.reader.view(req.slot, req.sequence)
        if got is None or got[0]["frame_id"] != req.frame_id:
            raise Error("the frame was overwritten before it was read (lapped): skipped")
        return got

    def still_valid(self, req: FrameRequest) -> bool:
        return self.reader.still_valid(req.slot, req.sequence)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def _json_default(value):
    # numpy scalars and arrays in a result become plain JSON numbers and lists.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def serve_connection(conn: socket.socket, model) -> None:
    """Serves one Ruth connection until it closes. ``model.process(frame)`` returns the
    result (any JSON value) or raises."""
    source = _FrameSource()
    rfile = conn.makefile("rb")
    try:
        while True:
            line = rfile.readline(MAX_REQUEST_BYTES)
            if not line:
                return
            if not line.endswith(b"\n"):
                if len(line) >= MAX_REQUEST_BYTES:
                    raise ValueError(f"a request line is longer than {MAX_REQUEST_BYTES} bytes")
                return  # closed in the middle of a line
            received = time.monotonic_ns()
            req = parse_request(line)
            conn.sendall(_answer(req, received, source, model))
    finally:
        source.close()
        rfile.close()


def _answer(req: FrameRequest, received: int, source: _FrameSource, model) -> bytes:
    why = req.unsupported()
    if why is not None:
        return error_line(req.id, why)
    try:
        if getattr(model, "in_place", False):
            meta, y, uv = source.view(req)
            frame = Frame(req, meta, y, uv, received)
            del y, uv
            try:
                result = model.process(frame)
            finally:
                del frame  # drops the views, so the reader can close
            if not source.still_valid(req):
                raise Error("the frame was overwritten while the model read it: result dropped")
        else:
            meta, y, uv = source.read(req)
            result = model.process(Frame(req, meta, y, uv, received))
    except (Error, FramesError) as e:
        return error_line(req.id, str(e))
    except Exception as e:  # a bug in the model: report it for this frame, keep serving
        return error_line(req.id, f"{type(e).__name__}: {e}")
    try:
        return (json.dumps({"id": req.id, "result": result}, separators=(",", ":"),
                           allow_nan=False, default=_json_default) + "\n").encode()
    except (TypeError, ValueError) as e:
        return error_line(req.id, f"the result is not JSON: {e}")


class ModelServer:
    """A listening model socket. A socket file left by a dead model is replaced; one that
    something listens on is an error."""

    def __init__(self, path: str) -> None:
        self.path = os.fspath(path)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISSOCK(st.st_mode):
                raise FileExistsError(f"{self.path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
                raise OSError(f"another process listens on {self.path}")
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(self.path)
            finally:
                probe.close()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(64)
        self._inode = os.stat(self.path).st_ino

    def run(self, new_model: Callable[[], object]) -> None:
        """Accepts forever; each connection gets ``new_model()`` and a daemon thread."""
        n = 0
        while True:
            conn, _ = self.sock.accept()
            model = new_model()
            threading.Thread(target=self._serve, args=(conn, model, n), name=f"conn-{n}",
                             daemon=True).start()
            n += 1

    @staticmethod
    def _serve(conn: socket.socket, model, n: int) -> None:
        try:
            serve_connection(conn, model)
        except (OSError, ValueError) as e:
            print(f"vas_model: connection {n} ended: {e}", file=sys.stderr, flush=True)
        finally:
            conn.close()

    def close(self) -> None:
        try:
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock.close()

    def __enter__(self) -> "ModelServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(path: str, new_model: Callable[[], object]) -> None:
    """Listens on ``path`` and serves forever; ``new_model()`` makes one model per
    subscription (connection). Ctrl-C or SIGTERM ends it and removes the socket."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with ModelServer(path) as server:
        try:
            server.run(new_model)
        except KeyboardInterrupt:
            pass
