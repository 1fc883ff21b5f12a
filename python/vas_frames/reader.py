"""Pure-Python reader of the VAS frame export, layout version 1.

The layout and the protocol are described byte by byte in vas-frames(7); the Rust crate
``frames`` is the reference implementation. This module needs only the standard library and
numpy.

Memory ordering: CPython exposes no atomics or fences. Shared fields are read through
memoryviews cast to the native integer types, so an aligned 4- or 8-byte field is read with a
single load (``struct.unpack`` would assemble it byte by byte and could tear). Between the
pixel copy and the second sequence read, ``_load_barrier`` orders the loads: x86-64 never
reorders loads with other loads, so it is not needed there; on arm64 it relies on the
release-then-acquire pair of CPython's lock (glibc semaphore atomics), which the hardware
keeps in order. The Rust reader is the strict one; use it where that matters.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import re
import sys
import threading
import time
from typing import NamedTuple, Optional

import numpy as np

LAYOUT_VERSION = 1
MAGIC = b"VASFRAME"
HEADER_SIZE = 256
RECORD_SIZE = 128
FORMAT_NV12 = 1
NO_SLOT = 0xFFFFFFFF
STATE_LIVE = 1
STATE_CLOSED = 2
FLAG_KEY_FRAME = 1
FLAG_DISCONTINUITY = 2
MIN_SLOTS = 2
MAX_SLOTS = 64
MAX_DIMENSION = 16384
PAGE_SIZE = 4096
DEFAULT_ROOT = "/dev/shm/vas"

# Header field offsets (bytes).
H_MAGIC = 0
H_LAYOUT_VERSION = 8
H_HEADER_SIZE = 12
H_RECORD_SIZE = 16
H_SLOT_COUNT = 20
H_WIDTH = 24
H_HEIGHT = 28
H_STRIDE_Y = 32
H_STRIDE_UV = 36
H_FORMAT = 40
H_WRITER_PID = 44
H_SLOT_SIZE = 48
H_DATA_SIZE = 56
H_GENERATION = 64
H_WRITER_START_WALL_NS = 72
H_PID_NAMESPACE = 80
H_PUBLISH_COUNTER = 128
H_LATEST_SLOT = 132
H_STATE = 136

# Record field offsets (bytes, from the start of the record).
R_SEQUENCE = 0
R_FRAME_ID = 8
R_PTS_NS = 16
R_WALL_NS = 24
R_MONO_NS = 32
R_WIDTH = 40
R_HEIGHT = 44
R_STRIDE_Y = 48
R_STRIDE_UV = 52
R_FORMAT = 56
R_FLAGS = 60
R_DATA_OFFSET = 64
R_DATA_LEN = 72

_CAMERA_ID = re.compile(r"[a-z0-9_-]{1,64}")

# FUTEX_WAIT needs the futex system call number, which differs per architecture.
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
_FUTEX_WAIT = 0


class FramesError(Exception):
    """Base of the errors this module raises."""


class NoExport(FramesError, FileNotFoundError):
    """The camera has no export (vasd not running, or export disabled for it)."""


class CorruptExport(FramesError, ValueError):
    """The files exist but are not a valid export."""


class UnsupportedVersion(FramesError, ValueError):
    """The export uses a newer layout version than this reader understands."""


class WriterClosed(FramesError, RuntimeError):
    """The writer closed the export while we attached; attach again."""


class FrameRef(NamedTuple):
    """Names one frame: pass ``slot`` and ``sequence`` to ``read``."""

    generation: int
    slot: int
    sequence: int
    frame_id: int


_BARRIER_LOCK = threading.Lock()


def _load_barrier() -> None:
    # Two lock round-trips: the release of the first and the acquire of the second form a
    # store-release / load-acquire pair on the lock word, which arm64 never reorders; loads
    # before it stay before, loads after it stay after. See the module docstring.
    with _BARRIER_LOCK:
        pass
    with _BARRIER_LOCK:
        pass


def _validate_camera_id(camera: str) -> None:
    if not isinstance(camera, str) or not _CAMERA_ID.fullmatch(camera):
        raise FramesError(
            f"invalid camera id {camera!r}: camera ids are 1 to 64 characters from a-z, 0-9, "
            "'_' and '-' (they become directory names)"
        )


class ExportReader:
    """A read-only attachment to one camera's export.

    >>> r = ExportReader("/dev/shm/vas", "front")
    >>> ref = r.latest()
    >>> got = r.read(ref.slot, ref.sequence) if ref else None
    >>> if got is not None:
    ...     meta, y, uv = got   # y: (H, W) uint8, uv: (H/2, W/2, 2) uint8
    """

    def __init__(self, root: str = DEFAULT_ROOT, camera: str = "") -> None:
        if sys.byteorder != "little":
            raise FramesError("the export is little-endian; this reader runs on little-endian hosts only")
        _validate_camera_id(camera)
        self.root = os.fspath(root)
        self.camera = camera
        self.meta_path = os.path.join(self.root, camera, "frame.meta")
        self.data_path = os.path.join(self.root, camera, "frame.data")
        self._meta = None
        self._data = None
        self._views = []
        try:
            self._attach()
        except BaseException:
            self.close()
            raise
        self._last_counter = self.publish_counter()

    # -- attaching ---------------------------------------------------------------------------

    def _corrupt(self, path: str, reason: str) -> CorruptExport:
        return CorruptExport(
            f"{path} is not a usable VAS frame export: {reason}; vasd replaces it when it next "
            "starts the camera, or remove it by hand if vasd no longer exports this camera"
        )

    def _attach(self) -> None:
        try:
            meta_fd = os.open(self.meta_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NoExport(
                f"no export for camera '{self.camera}' under {self.root}: is vasd running with "
                "export enabled for it?"
            ) from None
        try:
            st = os.fstat(meta_fd)
            self._meta_id = (st.st_dev, st.st_ino)
            largest = HEADER_SIZE + MAX_SLOTS * RECORD_SIZE
            if not HEADER_SIZE <= st.st_size <= largest:
                raise self._corrupt(
                    self.meta_path,
                    f"frame.meta is {st.st_size} bytes; a valid one is {HEADER_SIZE} to {largest}",
                )
            # Lengths are checked before mapping: nothing below reads past the file's end.
            self._meta = mmap.mmap(meta_fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ)
            meta_len = st.st_size
        finally:
            os.close(meta_fd)
        if meta_len % RECORD_SIZE:
            raise self._corrupt(self.meta_path, f"frame.meta is {meta_len} bytes, not a multiple of {RECORD_SIZE}")
        # Native-width views: one aligned load per field, never a byte-by-byte read.
        mv = memoryview(self._meta)
        self._u32, self._u64, self._i64 = mv.cast("I"), mv.cast("Q"), mv.cast("q")
        self._views += [mv, self._u32, self._u64, self._i64]

        if bytes(self._meta[H_MAGIC:H_MAGIC + 8]) != MAGIC:
            raise self._corrupt(self.meta_path, "its first 8 bytes are not the magic VASFRAME")
        version = self._h32(H_LAYOUT_VERSION)
        if version > LAYOUT_VERSION:
            raise UnsupportedVersion(
                f"{self.meta_path} uses frame layout version {version}, this reader understands "
                f"only version {LAYOUT_VERSION}: upgrade the reader (the frames crate, vas-frames "
                "or the vas_frames Python package) to the version that matches vasd"
            )
        if version != LAYOUT_VERSION:
            raise self._corrupt(self.meta_path, f"layout version {version} does not exist")
        if self._h32(H_HEADER_SIZE) != HEADER_SIZE or self._h32(H_RECORD_SIZE) != RECORD_SIZE:
            raise self._corrupt(self.meta_path, "header_size or record_size is not the version 1 value")
        self.slots = self._h32(H_SLOT_COUNT)
        if not MIN_SLOTS <= self.slots <= MAX_SLOTS:
            raise self._corrupt(self.meta_path, f"slot_count {self.slots} is outside {MIN_SLOTS}..={MAX_SLOTS}")
        expected_len = HEADER_SIZE + self.slots * RECORD_SIZE
        if meta_len != expected_len:
            raise self._corrupt(
                self.meta_path,
                f"frame.meta is {meta_len} bytes, {self.slots} slots need exactly {expected_len}",
            )
        self.width = self._h32(H_WIDTH)
        self.height = self._h32(H_HEIGHT)
        self.stride_y = self._h32(H_STRIDE_Y)
        self.stride_uv = self._h32(H_STRIDE_UV)
        self.format = self._h32(H_FORMAT)
        self.writer_pid = self._h32(H_WRITER_PID)
        self.slot_size = self._h64(H_SLOT_SIZE)
        self.data_size = self._h64(H_DATA_SIZE)
        self.generation = self._h64(H_GENERATION)
        self.writer_start_wall_ns = self._i64[H_WRITER_START_WALL_NS // 8]
        self.pid_namespace = self._h64(H_PID_NAMESPACE)
        if self.format != FORMAT_NV12:
            raise self._corrupt(self.meta_path, f"pixel format {self.format} is not NV12 ({FORMAT_NV12})")
        if not (1 <= self.width <= MAX_DIMENSION and 1 <= self.height <= MAX_DIMENSION):
            raise self._corrupt(self.meta_path, f"geometry {self.width}x{self.height} is out of range")
        self.chroma_rows = (self.height + 1) // 2
        self.chroma_width = (self.width + 1) // 2
        if self.stride_y < self.width or self.stride_uv < 2 * self.chroma_width:
            raise self._corrupt(self.meta_path, "strides are too small for the width")
        self.frame_len = self.stride_y * self.height + self.stride_uv * self.chroma_rows
        if self.slot_size % PAGE_SIZE or self.slot_size < self.frame_len:
            raise self._corrupt(self.meta_path, f"slot_size {self.slot_size} cannot hold a frame")
        if self.data_size != self.slot_size * self.slots:
            raise self._corrupt(self.meta_path, f"data_size {self.data_size} is not slot_count * slot_size")
        if self._h32(H_STATE) != STATE_LIVE:
            raise self._closed()

        try:
            data_fd = os.open(self.data_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if self._h32(H_STATE) != STATE_LIVE:
                raise self._closed() from None
            raise self._corrupt(self.data_path, "frame.meta exists without it") from None
        try:
            data_len = os.fstat(data_fd).st_size
            if data_len != self.data_size:
                if self._h32(H_STATE) != STATE_LIVE:
                    raise self._closed()
                raise self._corrupt(
                    self.data_path, f"frame.data is {data_len} bytes, the header says {self.data_size}"
                )
            self._data = mmap.mmap(data_fd, data_len, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(data_fd)
        # The writer marks the old meta CLOSED before it moves new files into place.
        if self._h32(H_STATE) != STATE_LIVE:
            raise self._closed()
        try:
            own_ns = os.stat("/proc/self/ns/pid").st_ino
        except OSError:
            own_ns = 0
        self._check_writer_pid = self.pid_namespace != 0 and self.pid_namespace == own_ns
        # The futex word's address, for FUTEX_WAIT through ctypes (numpy accepts read-only
        # buffers, ctypes.from_buffer does not).
        self._counter_array = np.frombuffer(self._meta, dtype=np.uint32, count=1, offset=H_PUBLISH_COUNTER)

    def _closed(self) -> WriterClosed:
        return WriterClosed(
            f"the export of camera '{self.camera}' was closed by its writer while attaching "
            "(vasd is restarting the camera or changing its resolution): attach again"
        )

    def _h32(self, offset: int) -> int:
        return self._u32[offset // 4]

    def _h64(self, offset: int) -> int:
        return self._u64[offset // 8]

    # -- reading -----------------------------------------------------------------------------

    def publish_counter(self) -> int:
        return self._h32(H_PUBLISH_COUNTER)

    def _record(self, slot: int, offset: int, signed: bool = False, width: int = 8) -> int:
        at = HEADER_SIZE + slot * RECORD_SIZE + offset
        if width == 4:
            return self._u32[at // 4]
        return (self._i64 if signed else self._u64)[at // 8]

    def _snapshot(self, slot: int) -> dict:
        r = lambda off, **kw: self._record(slot, off, **kw)  # noqa: E731
        flags = r(R_FLAGS, width=4)
        return {
            "frame_id": r(R_FRAME_ID),
            "pts_ns": r(R_PTS_NS, signed=True),
            "wall_ns": r(R_WALL_NS, signed=True),
            "mono_ns": r(R_MONO_NS, signed=True),
            "width": r(R_WIDTH, width=4),
            "height": r(R_HEIGHT, width=4),
            "stride_y": r(R_STRIDE_Y, width=4),
            "stride_uv": r(R_STRIDE_UV, width=4),
            "format": r(R_FORMAT, width=4),
            "key_frame": bool(flags & FLAG_KEY_FRAME),
            "discontinuity": bool(flags & FLAG_DISCONTINUITY),
            "data_offset": r(R_DATA_OFFSET),
            "data_len": r(R_DATA_LEN),
        }

    def _record_ok(self, slot: int, m: dict) -> bool:
        return (
            m["format"] == FORMAT_NV12
            and m["width"] == self.width
            and m["height"] == self.height
            and m["stride_y"] == self.stride_y
            and m["stride_uv"] == self.stride_uv
            and m["data_offset"] == slot * self.slot_size
            and m["data_len"] == self.frame_len
        )

    def latest(self) -> Optional[FrameRef]:
        """The most recently published frame, or None (nothing published yet, or the slot was
        overwritten on every attempt)."""
        for _ in range(4):
            slot = self._h32(H_LATEST_SLOT)
            if slot == NO_SLOT or slot >= self.slots:
                return None
            seq = self._record(slot, R_SEQUENCE)
            if seq == 0 or seq % 2:
                continue
            _load_barrier()
            m = self._snapshot(slot)
            _load_barrier()
            if self._record(slot, R_SEQUENCE) == seq and self._record_ok(slot, m):
                return FrameRef(self.generation, slot, seq, m["frame_id"])
        return None

    def read(self, slot: int, sequence: int):
        """Copies frame ``sequence`` of ``slot`` out and validates it.

        Returns ``(meta, y, uv)``: ``meta`` a dict of the record fields, ``y`` a (height,
        width) uint8 array, ``uv`` a (ceil(height/2), ceil(width/2), 2) uint8 array (U, V).
        Returns None when the frame was overwritten before or during the copy (lapped or
        torn): skip it, never use partial data.
        """
        if not 0 <= slot < self.slots or sequence == 0 or sequence % 2:
            return None
        if self._record(slot, R_SEQUENCE) != sequence:
            return None  # lapped
        _load_barrier()
        m = self._snapshot(slot)
        if not self._record_ok(slot, m):
            return None  # torn record (or corrupt): bounds are never trusted unvalidated
        off, length = m["data_offset"], m["data_len"]
        pixels = np.frombuffer(self._data, dtype=np.uint8, count=length, offset=off).copy()
        _load_barrier()
        if self._record(slot, R_SEQUENCE) != sequence:
            return None  # torn
        y_len = m["stride_y"] * m["height"]
        y = pixels[:y_len].reshape(m["height"], m["stride_y"])[:, : m["width"]]
        rows, cw = (m["height"] + 1) // 2, (m["width"] + 1) // 2
        uv = pixels[y_len:].reshape(rows, m["stride_uv"])[:, : 2 * cw].reshape(rows, cw, 2)
        for key in ("data_offset", "format", "stride_y", "stride_uv"):
            m.pop(key)
        m["sequence"] = sequence
        m["slot"] = slot
        return m, y, uv

    def view(self, slot: int, sequence: int):
        """Frame ``sequence`` of ``slot`` in place, without a copy: ``(meta, y, uv)`` as
        ``read`` returns them, but ``y`` and ``uv`` are read-only numpy views of the mapped
        slot (``y.strides`` is ``(stride_y, 1)``), or None when the slot already holds
        another frame.

        vasd may overwrite the slot while the caller reads the views (the ring has a few
        slots, the writer never waits): anything computed from them is valid only if
        ``still_valid(slot, sequence)`` is true after the computation; otherwise discard it.
        Drop the views before ``close`` (a live view keeps the mapping busy).
        """
        if not 0 <= slot < self.slots or sequence == 0 or sequence % 2:
            return None
        if self._record(slot, R_SEQUENCE) != sequence:
            return None
        _load_barrier()
        m = self._snapshot(slot)
        _load_barrier()
        if self._record(slot, R_SEQUENCE) != sequence or not self._record_ok(slot, m):
            return None  # the record changed under the snapshot: its bounds are not trusted
        pixels = np.frombuffer(self._data, dtype=np.uint8, count=m["data_len"], offset=m["data_offset"])
        y_len = m["stride_y"] * m["height"]
        y = pixels[:y_len].reshape(m["height"], m["stride_y"])[:, : m["width"]]
        rows, cw = (m["height"] + 1) // 2, (m["width"] + 1) // 2
        uv = pixels[y_len:].reshape(rows, m["stride_uv"])[:, : 2 * cw].reshape(rows, cw, 2)
        for key in ("data_offset", "format", "stride_y", "stride_uv"):
            m.pop(key)
        m["sequence"] = sequence
        m["slot"] = slot
        return m, y, uv

    def still_valid(self, slot: int, sequence: int) -> bool:
        """True when ``slot`` still holds frame ``sequence``: what was computed from its
        ``view`` since then saw that frame and nothing else."""
        _load_barrier()  # the pixel loads of the computation come before this sequence load
        return 0 <= slot < self.slots and self._record(slot, R_SEQUENCE) == sequence

    def read_ref(self, ref: FrameRef):
        """``read`` for a FrameRef from another process; None if it belongs to another
        generation or slot content."""
        if ref.generation != self.generation:
            return None
        got = self.read(ref.slot, ref.sequence)
        if got is None or got[0]["frame_id"] != ref.frame_id:
            return None
        return got

    # -- waiting and staleness ---------------------------------------------------------------

    def wait(self, timeout: float, last_counter: Optional[int] = None, poll_interval: Optional[float] = None):
        """Waits until the publish counter differs from ``last_counter`` (by default the value
        seen by the previous ``wait``, or at attach). Returns the new counter, or None on
        timeout or when the writer closed (check ``is_stale``).

        On x86-64 and arm64 Linux this sleeps in FUTEX_WAIT through ctypes, like the Rust
        reader. Elsewhere, or with ``poll_interval`` set, it polls the counter every
        ``poll_interval`` seconds (default 2 ms): Python has no futex of its own.
        """
        expected = self._last_counter if last_counter is None else last_counter
        deadline = time.monotonic() + timeout
        use_futex = poll_interval is None and _SYS_FUTEX is not None
        interval = 0.002 if poll_interval is None else poll_interval
        while True:
            now_counter = self.publish_counter()
            if self._h32(H_STATE) != STATE_LIVE:
                return None
            if now_counter != expected:
                self._last_counter = now_counter
                return now_counter
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if use_futex:
                _futex_wait(int(self._counter_array.ctypes.data), expected, remaining)
            else:
                time.sleep(min(interval, remaining))

    def is_stale(self) -> bool:
        """True when the caller should re-attach: the writer closed, the files were replaced,
        or the writer process is gone (checked only in the writer's pid namespace)."""
        if self._h32(H_STATE) != STATE_LIVE or self._h64(H_GENERATION) != self.generation:
            return True
        try:
            st = os.stat(self.meta_path)
            if (st.st_dev, st.st_ino) != self._meta_id:
                return True
        except FileNotFoundError:
            return True
        if self._check_writer_pid:
            try:
                os.kill(self.writer_pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        return False

    def close(self) -> None:
        self._counter_array = None
        for view in reversed(self._views):
            view.release()
        self._views = []
        for m in (self._data, self._meta):
            if m is not None:
                m.close()
        self._data = self._meta = None

    def __enter__(self) -> "ExportReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = ctypes.CDLL(None, use_errno=True) if _SYS_FUTEX is not None else None


def _futex_wait(address: int, expected: int, timeout: float) -> None:
    """FUTEX_WAIT (shared, not private: the word is in a file mapping shared between
    processes). Returns on wake, timeout, signal, or when the word already differs."""
    seconds = int(timeout)
    ts = _Timespec(seconds, int((timeout - seconds) * 1e9))
    rc = _libc.syscall(
        ctypes.c_long(_SYS_FUTEX),
        ctypes.c_void_p(address),
        ctypes.c_int(_FUTEX_WAIT),
        ctypes.c_uint32(expected),
        ctypes.byref(ts),
        ctypes.c_void_p(None),
        ctypes.c_int(0),
    )
    if rc == -1 and ctypes.get_errno() not in (errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT):
        raise OSError(ctypes.get_errno(), "FUTEX_WAIT failed")
