#!/usr/bin/env python3
"""Faces turned in the picture: how many the recognizer finds, how many it reads right, and how fast,
at each angle, beside the `fer` package on the same clips.

For each angle the held-out clip of benchmarks/speed.py (640x480, four FER2013 PublicTest faces per
frame, each staying 5-20 frames) is made with every face turned by that many degrees, alternately
one way and the other, and run through `recognition.py --source clip.mp4 --no-display --json` as a
user runs it, and through fer's own loop over the same file (`FER().detect_emotions` per frame). A face
is found when a box's centre lies inside the square it was drawn in. The peer needs
`pip install --no-deps fer==25.10.3 requests Pillow "setuptools<81"`; `--skip-fer` measures this
project alone.

    python benchmarks/turned_faces.py                      # 0, 15, 25, 35 and 45 degrees
    python benchmarks/turned_faces.py --angles 0 25 35 --frames 150
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import live_fer, live_project, make_fer_clip, score_live
from emotion_recognition.cli import HelpFormatter, add_standard_options
from emotion_recognition.config import DEFAULT_DATA_DIR, DEFAULT_MODEL_PATH
from emotion_recognition.errors import friendly_errors
from emotion_recognition.runtime import cpu_description

ANGLES = (0, 15, 25, 35, 45)
CLIP_FRAMES = 300


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR / "test"), help="FER2013 PublicTest folder")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="the .keras model to measure")
    parser.add_argument("--angles", type=float, nargs="+", default=ANGLES, help="degrees to turn the faces by")
    parser.add_argument("--frames", type=int, default=CLIP_FRAMES, help="frames per clip")
    parser.add_argument("--seed", type=int, default=0, help="draws the clip's faces, places and turns: another seed, "
                                                           "another clip of the same kind")
    parser.add_argument("--skip-fer", action="store_true", help="measure this project only")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_standard_options(parser)
    return parser.parse_args(argv)


def row(name, angle, fps, truth, detections):
    scores = score_live(truth, detections)
    return {"pipeline": name, "angle": angle, "fps": fps, "recall": scores["found"] / scores["present"],
            "accuracy": scores["correct"] / max(scores["found"], 1), **scores}


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        rows = []
        with tempfile.TemporaryDirectory() as folder:
            for angle in args.angles:
                clip = Path(folder) / f"turned{angle:g}.mp4"
                truth = make_fer_clip(Path(args.data), clip, args.frames, seed=args.seed, turn=angle)
                fps, detections, _ = live_project(clip, args.model)
                rows.append(row("this project", angle, fps, truth, detections))
                if not args.skip_fer:
                    fps, detections = live_fer(clip)
                    rows.append(row("fer 25.10.3", angle, fps, truth, detections))
        if args.json:
            print(json.dumps({"cpu": cpu_description(), "frames": args.frames, "rows": rows}))
            return
        print(f"Faces turned by ± each angle, {args.frames} frames of four held-out faces, on {cpu_description()}:")
        print(f"{'pipeline':<14} {'angle':>6} {'recall':>7} {'accuracy on found':>18} {'frames/s':>9}")
        for r in rows:
            print(f"{r['pipeline']:<14} {r['angle']:>5g}° {r['recall']:>7.3f} {r['accuracy']:>18.3f} {r['fps']:>9.1f}")


if __name__ == "__main__":
    sys.exit(main())
