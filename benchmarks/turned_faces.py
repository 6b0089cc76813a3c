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
    python benchmarks/turned_faces.py --angles 0 25 35 --seeds 0 1 2 3 4 --skip-fer   # five clips, and their mean
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
    parser.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0],
                        help="each draws a clip's faces, places and turns: another seed, another clip of the same "
                             "kind; with several, each angle's mean over them is printed too")
    parser.add_argument("--skip-fer", action="store_true", help="measure this project only")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_standard_options(parser)
    return parser.parse_args(argv)


def row(name, angle, fps, truth, detections):
    scores = score_live(truth, detections)
    return {"pipeline": name, "angle": angle, "fps": fps, "recall": scores["found"] / scores["present"],
            "accuracy": scores["correct"] / max(scores["found"], 1), **scores}


def mean_row(rows):
    """The mean of several clips' rows of one pipeline and angle (recall and accuracy averaged per clip)."""
    return {**rows[0], "seed": "mean", **{key: sum(r[key] for r in rows) / len(rows) for key in ("fps", "recall", "accuracy")}}


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        rows = []
        with tempfile.TemporaryDirectory() as folder:
            for angle in args.angles:
                angle_rows = []
                for seed in args.seeds:
                    clip = Path(folder) / f"turned{angle:g}-{seed}.mp4"
                    truth = make_fer_clip(Path(args.data), clip, args.frames, seed=seed, turn=angle)
                    fps, detections, _ = live_project(clip, args.model)
                    angle_rows.append({**row("this project", angle, fps, truth, detections), "seed": seed})
                    if not args.skip_fer:
                        fps, detections = live_fer(clip)
                        angle_rows.append({**row("fer 25.10.3", angle, fps, truth, detections), "seed": seed})
                if len(args.seeds) > 1:
                    for name in dict.fromkeys(r["pipeline"] for r in angle_rows):
                        angle_rows.append(mean_row([r for r in angle_rows if r["pipeline"] == name]))
                rows.extend(angle_rows)
        if args.json:
            print(json.dumps({"cpu": cpu_description(), "frames": args.frames, "rows": rows}))
            return
        print(f"Faces turned by ± each angle, {args.frames} frames of four held-out faces, on {cpu_description()}:")
        print(f"{'pipeline':<14} {'angle':>6} {'clip':>5} {'recall':>7} {'accuracy on found':>18} {'frames/s':>9}")
        for r in rows:
            print(f"{r['pipeline']:<14} {r['angle']:>5g}° {r['seed']:>5} {r['recall']:>7.3f} {r['accuracy']:>18.3f} "
                  f"{r['fps']:>9.1f}")


if __name__ == "__main__":
    sys.exit(main())
