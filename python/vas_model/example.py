"""The example model, Python twin of vas-model-example: a motion score against the previous
frame of the same subscription and the mean luma of each region of a grid. Same numbers as
the Rust binary, bit for bit (exact ratios of integer sums).

Usage: python3 -m vas_model.example --socket PATH [--grid N] [--delay-ms MS] [--timing]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import serve

# A luma step above which a sampled pixel counts as changed (about 10% of the range).
CHANGED_THRESHOLD = 25
# Motion samples one pixel in 4x4, region means one in 2x2 (see vas-model-example).
MOTION_STEP = 4
LUMA_STEP = 2


def region_luma(y: np.ndarray, grid: int):
    """Mean luma of grid x grid regions over the pixels whose row and column are multiples
    of LUMA_STEP; region (i, j) spans rows i*H//grid .. (i+1)*H//grid (and columns alike)."""
    h, w = y.shape
    first = lambda v: -(-v // LUMA_STEP) * LUMA_STEP  # noqa: E731 (round up to a multiple)
    out = []
    for i in range(grid):
        r0, r1 = i * h // grid, (i + 1) * h // grid
        row = []
        for j in range(grid):
            c0, c1 = j * w // grid, (j + 1) * w // grid
            block = y[first(r0):r1:LUMA_STEP, first(c0):c1:LUMA_STEP]
            row.append(int(block.sum(dtype=np.int64)) / block.size if block.size else None)
        out.append(row)
    return out


def motion_samples(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y[::MOTION_STEP, ::MOTION_STEP])


def compare(before: np.ndarray, now: np.ndarray):
    """(mean |difference| / 255, share of samples that moved by more than the threshold)."""
    n = before.size
    if n == 0:
        return 0.0, 0.0
    d = np.abs(before.astype(np.int16) - now.astype(np.int16))
    return int(d.sum(dtype=np.int64)) / (n * 255), int((d > CHANGED_THRESHOLD).sum()) / n


class MotionModel:
    def __init__(self, grid: int = 3, delay_ms: int = 0, timing: bool = False) -> None:
        self.grid = grid
        self.delay = delay_ms / 1000.0
        self.timing = timing
        self.previous = None  # (frame_id, shape, samples)

    def process(self, frame):
        luma = region_luma(frame.y, self.grid)
        samples = motion_samples(frame.y)
        motion = changed = previous_id = None
        if self.previous is not None and self.previous[1] == frame.y.shape:
            motion, changed = compare(self.previous[2], samples)
            previous_id = self.previous[0]
        self.previous = (frame.frame_id, frame.y.shape, samples)
        if self.delay:
            time.sleep(self.delay)  # plays a slow model: Ruth must skip, not queue
        result = {
            "motion": motion,
            "changed": changed,
            "previous_frame_id": previous_id,
            "grid": self.grid,
            "luma": luma,
        }
        if self.timing:
            result["receive_latency_us"] = (frame.received_mono_ns - frame.meta["mono_ns"]) // 1000
        return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python3 -m vas_model.example",
        description="The VAS example model: a motion score and the mean luma of each region "
        "of a grid, for every frame Ruth sends (see vas-model(7)).")
    ap.add_argument("--socket", required=True, help="Unix socket to listen on")
    ap.add_argument("--grid", type=int, default=3, choices=range(1, 17), metavar="N",
                    help="regions per side for the mean luma, 1 to 16 (default 3)")
    ap.add_argument("--delay-ms", type=int, default=0, help="extra time per frame (default 0)")
    ap.add_argument("--timing", action="store_true", help="add receive_latency_us to results")
    a = ap.parse_args(argv)
    print(f"vas_model.example: listening on {a.socket}", file=sys.stderr, flush=True)
    serve(a.socket, lambda: MotionModel(a.grid, a.delay_ms, a.timing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
