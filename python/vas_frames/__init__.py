"""Read frames that vasd exports to shared memory, as numpy arrays.

    from vas_frames import ExportReader

    reader = ExportReader("/dev/shm/vas", "front")
    while True:
        if reader.wait(timeout=1.0) is None:
            if reader.is_stale():
                reader = ExportReader("/dev/shm/vas", "front")   # vasd restarted the camera
            continue
        ref = reader.latest()
        got = reader.read(ref.slot, ref.sequence) if ref else None
        if got is None:
            continue                     # overwritten while copying: skip it
        meta, y, uv = got                # y: (H, W) uint8; uv: (H/2, W/2, 2) uint8

Pure Python (standard library and numpy). The layout is in vas-frames(7).
"""

from .reader import (
    DEFAULT_ROOT,
    LAYOUT_VERSION,
    CorruptExport,
    ExportReader,
    FrameRef,
    FramesError,
    NoExport,
    UnsupportedVersion,
    WriterClosed,
)

__all__ = [
    "DEFAULT_ROOT",
    "LAYOUT_VERSION",
    "CorruptExport",
    "ExportReader",
    "FrameRef",
    "FramesError",
    "NoExport",
    "UnsupportedVersion",
    "WriterClosed",
]
