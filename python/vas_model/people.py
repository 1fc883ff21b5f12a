"""vas-model-people: people in camera frames, found by OpenCV's HOG person detector (Dalal and
Triggs, 2005, with the SVM that OpenCV ships built in: no weights file).

The detector runs on the NV12 Y plane as it lies in the export: the frame is neither copied
nor converted (``in_place``, see vas_model.Frame), because HOG needs grey levels only and the
Y plane is one. The result is the boxes in frame pixels, each with the SVM score, and the
frame's size, so a consumer can scale the boxes to any picture of the same camera.

Needs Debian's python3-opencv (4.6): the opencv-python-headless wheels from PyPI no longer
build the HOG people detector.

Usage: vas-model-people --socket PATH [--stride N] [--scale S] [--min-score X] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time

from . import serve

# 64x128 is the detection window of the default people detector: a person must be about
# 128 pixels tall at scale 1 (in the Y plane), smaller ones are not found.
WINDOW = (64, 128)


def load_cv2():
    """The cv2 module, or exit with what to install."""
    try:
        import cv2
    except ImportError:
        sys.exit("vas-model-people: OpenCV for Python is missing: install Debian's "
                 "python3-opencv (apt-get install python3-opencv)")
    if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        sys.exit("vas-model-people: this OpenCV has no HOG people detector (the PyPI "
                 "opencv-python-headless wheels dropped it): use Debian's python3-opencv")
    return cv2


class PeopleModel:
    in_place = True  # HOG reads the Y plane in the slot; the server re-checks it after

    def __init__(self, cv2, stride: int, scale: float, min_score: float) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.stride = (stride, stride)
        self.scale = scale
        self.min_score = min_score

    def process(self, frame):
        y = frame.y  # (height, width) uint8, rows stride_y bytes apart: no copy is made
        t0 = time.thread_time_ns()
        rects, scores = self.hog.detectMultiScale(
            y, winStride=self.stride, padding=(8, 8), scale=self.scale)
        cpu_us = (time.thread_time_ns() - t0) // 1000
        people = []
        for (x, top, w, h), score in zip(rects, scores.ravel() if len(scores) else ()):
            if score >= self.min_score:
                people.append({"x": int(x), "y": int(top), "w": int(w), "h": int(h),
                               "score": round(float(score), 3)})
        people.sort(key=lambda p: -p["score"])
        return {
            "count": len(people),
            "people": people,
            "width": frame.width,
            "height": frame.height,
            "detector_cpu_us": cpu_us,
        }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="vas-model-people",
        description="A VAS model: people in each frame Ruth sends, by OpenCV's HOG person "
        "detector on the Y plane (see vas-model-people(1)).")
    ap.add_argument("--socket", required=True, help="Unix socket to listen on")
    ap.add_argument("--stride", type=int, default=8, choices=(4, 8, 16), metavar="N",
                    help="window step in pixels: 4, 8 or 16 (default 8)")
    ap.add_argument("--scale", type=float, default=1.2, metavar="S",
                    help="step between image scales, above 1 (default 1.2; 1.05 finds more "
                    "and costs about 3 times as much)")
    ap.add_argument("--min-score", type=float, default=0.5, metavar="X",
                    help="lowest SVM score reported (default 0.5)")
    ap.add_argument("--threads", type=int, default=1, metavar="N",
                    help="OpenCV threads per frame, 1 or more (default 1)")
    a = ap.parse_args(argv)
    if not 1.01 <= a.scale <= 2.0:
        ap.error("--scale must be between 1.01 and 2")
    if a.threads < 1:
        ap.error("--threads must be 1 or more")
    cv2 = load_cv2()
    cv2.setNumThreads(a.threads)
    print(f"vas-model-people: listening on {a.socket} (stride {a.stride}, scale {a.scale}, "
          f"min score {a.min_score}, {a.threads} threads)", file=sys.stderr, flush=True)
    serve(a.socket, lambda: PeopleModel(cv2, a.stride, a.scale, a.min_score))
    return 0


if __name__ == "__main__":
    sys.exit(main())
