#!/usr/bin/env python3
"""Reports of videos at scale: videos per hour with 1, 2 and N workers, and whether memory stays flat
over a long video.

Throughput: a folder of generated 640x480 videos (four copies of a real face each, benchmarks/common.py's
clip) through `recognition.py --source DIR --report OUT --workers W`, as a user runs it, for each W;
then the same command again, which must skip every video. Memory: one short and one long video (one
face, drifting), each through `recognition.py --source VIDEO --no-display --report OUT` in a fresh
process that reports its peak memory; a report that kept every frame would grow with the video.

    python benchmarks/video_reports.py                      # 6 videos of 20 s; 1, 2 and all-core workers
    python benchmarks/video_reports.py --memory-minutes 1 20 --every 5
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from common import ASTRONAUT_HEAD, make_video, recognition_with_peak
from emotion_recognition.cli import HelpFormatter
from emotion_recognition.errors import UserError, friendly_errors
from emotion_recognition.runtime import cpu_description

CLIP_FPS = 30           # make_video's frame rate
MEMORY_FPS = 10         # the long videos' frame rate: few frames to encode, the same loop per frame
MEMORY_SIZE = (640, 480)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--videos", type=int, default=6, help="videos in the throughput folder")
    parser.add_argument("--seconds", type=int, default=20, help="length of each throughput video")
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, 2, os.cpu_count() or 1}),
                        help="worker counts to measure")
    parser.add_argument("--memory-minutes", type=float, nargs=2, default=(1, 20), metavar=("SHORT", "LONG"),
                        help="lengths of the two videos of the memory check (0 0 skips it)")
    parser.add_argument("--every", type=int, default=5, help="--every for the memory check's videos")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def drifting_face_video(path, minutes):
    """A 640x480 video of one face drifting to and fro for `minutes`, at MEMORY_FPS."""
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x, y, w, h = ASTRONAUT_HEAD
    head = photo[y:y + h, x:x + w]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), MEMORY_FPS, MEMORY_SIZE)
    for index in range(int(minutes * 60 * MEMORY_FPS)):
        frame = np.full((MEMORY_SIZE[1], MEMORY_SIZE[0], 3), 110, np.uint8)
        left = 200 + round(120 * np.sin(index / 40))
        frame[150:150 + h, left:left + w] = head
        writer.write(frame)
    writer.release()


def throughput(folder, args):
    """Rows of (workers, seconds, videos/hour), then the rerun's seconds."""
    videos = folder / "videos"
    videos.mkdir()
    for number in range(args.videos):
        make_video(videos / f"video{number}.mp4", args.seconds * CLIP_FPS)
    rows = []
    for workers in args.workers:
        reports = folder / f"reports-{workers}"
        seconds, _, result = recognition_with_peak("--source", videos, "--report", reports, "--workers", workers)
        if result.returncode:
            raise UserError(f"the batch with {workers} workers failed: {result.stderr.strip().splitlines()[-1:]}")
        rows.append({"workers": workers, "seconds": seconds, "videos_per_hour": 3600 * args.videos / seconds})
    rerun, _, result = recognition_with_peak("--source", videos, "--report", folder / f"reports-{args.workers[-1]}",
                                             "--workers", args.workers[-1])
    skipped = f"{args.videos} skipped" in result.stderr
    return rows, {"seconds": rerun, "all_skipped": skipped}


def memory(folder, args):
    """Peak memory (MB) of reporting the short and the long video."""
    peaks = {}
    for minutes in args.memory_minutes:
        video = folder / f"memory-{minutes:g}min.mp4"
        drifting_face_video(video, minutes)
        seconds, peak, result = recognition_with_peak("--source", video, "--no-display", "--every", args.every,
                                                      "--report", folder / f"memory-{minutes:g}")
        if result.returncode:
            raise UserError(f"the {minutes:g}-minute video failed: {result.stderr.strip().splitlines()[-1:]}")
        peaks[f"{minutes:g}"] = {"peak_mb": peak, "seconds": seconds}
    return peaks


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        with tempfile.TemporaryDirectory() as folder:
            rows, rerun = throughput(Path(folder), args)
            peaks = memory(Path(folder), args) if any(args.memory_minutes) else {}
        if args.json:
            print(json.dumps({"cpu": cpu_description(), "videos": args.videos, "seconds_each": args.seconds,
                              "throughput": rows, "rerun": rerun, "memory": peaks}))
            return
        print(f"{args.videos} videos of {args.seconds} s (640x480, four faces) on {cpu_description()}:")
        for row in rows:
            print(f"  {row['workers']:>2} workers: {row['seconds']:7.1f} s, {row['videos_per_hour']:7.0f} videos/hour")
        print(f"  the same command again: {rerun['seconds']:.1f} s, every video skipped: {rerun['all_skipped']}")
        for minutes, peak in peaks.items():
            print(f"  a {minutes}-minute video, --every {args.every}: peak memory {peak['peak_mb']:.0f} MB "
                  f"({peak['seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
