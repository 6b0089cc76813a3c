#!/usr/bin/env python3
"""Where the Haar cascade's box falls on a FER2013 face, and what widening it does to accuracy.

The model learned FER2013's framing of a face; the recognizer crops whatever box the cascade finds.
This checks that the two agree. Each face of the validation slice of `train/` (the faces train.py
holds out, never PublicTest) is enlarged to 150-200 px on a grey 640x480 frame, as in speed.py's
clip; the cascade searches the frame as the recognizer does; the faces it finds are classified by
the recognizer through its box, through boxes widened about their centre, and through the exact
square the face was drawn in; and, through the box, with each of evaluate.py's test-time views
(one view, the mirror image, 18 views, ten crops), to see which of them pay in the live path.

    python benchmarks/face_framing.py
    python benchmarks/face_framing.py --margins 1.0 1.05 1.1 --json
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from emotion_recognition.cli import HelpFormatter
from emotion_recognition.config import DEFAULT_DATA_DIR, DEFAULT_MODEL_PATH
from emotion_recognition.errors import friendly_errors
from emotion_recognition.geometry import centre_inside

FRAME_SIZE = (640, 480)
BACKGROUND = 128
FACE_SIZES = (150, 200)        # each face's side in pixels, drawn from this range (speed.py's clip)
VALIDATION_FRACTION = 0.1      # train.py's default --val-split: the same held-out faces


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="FER2013 folder holding train/")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="the .keras model to classify with")
    parser.add_argument("--margins", type=float, nargs="+", default=[1.0, 1.1, 1.2, 1.3],
                        help="box widths to try, as multiples of the cascade's box")
    parser.add_argument("--seed", type=int, default=0, help="face sizes and places")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def validation_faces(data_dir):
    """The validation slice of `data_dir`/train (the faces train.py holds out): images, labels."""
    from emotion_recognition import data

    images, labels, _ = data.load_split(Path(data_dir) / "train", verbose=False)
    _, validation = data.stratified_split(labels, VALIDATION_FRACTION, data.VALIDATION_SEED)
    return images[validation], labels[validation]


def draw_face(image, rng, frame=None):
    """`image` enlarged to a random size in FACE_SIZES at a random place on `frame` (a FRAME_SIZE
    grayscale copy is drawn on; default a flat grey one). Returns (frame, (x, y, side))."""
    frame = np.full(FRAME_SIZE[::-1], BACKGROUND, np.uint8) if frame is None else frame.copy()
    side = int(rng.integers(FACE_SIZES[0], FACE_SIZES[1] + 1))
    x = int(rng.integers(0, FRAME_SIZE[0] - side))
    y = int(rng.integers(0, FRAME_SIZE[1] - side))
    frame[y:y + side, x:x + side] = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    return frame, (x, y, side)


def on_face(box, square):
    """Whether a detection's centre lies inside the square a face was drawn in (speed.py's clip
    counts a face found the same way)."""
    x, y, side = square
    return centre_inside(box, (x, y, side, side))


def framed_faces(images, rng, detector):
    """Per face found: its frame, the cascade's box and the square it was drawn in (x, y, side)."""
    found = []
    for index, image in enumerate(images):
        frame, square = draw_face(image, rng)
        box = next((box for box in detector.detect(frame) if on_face(box, square)), None)
        if box is not None:
            found.append((index, frame, tuple(int(v) for v in box), square))
    return found


def widened(box, margin, frame_shape):
    """The box scaled about its centre, clipped to the frame."""
    x, y, w, h = box
    new_w, new_h = w * margin, h * margin
    left, top = max(0, round(x + w / 2 - new_w / 2)), max(0, round(y + h / 2 - new_h / 2))
    right = min(frame_shape[1], round(x + w / 2 + new_w / 2))
    bottom = min(frame_shape[0], round(y + h / 2 + new_h / 2))
    return left, top, right - left, bottom - top


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        from emotion_recognition import EmotionRecognizer
        from emotion_recognition.evaluation import TTA_MODES, TTA_VIEW_COUNT, augmented_views
        from emotion_recognition.faces import FaceDetector
        from emotion_recognition.preprocessing import face_pixels

        images, labels = validation_faces(args.data)
        found = framed_faces(images, np.random.default_rng(args.seed), FaceDetector())
        truth = labels[[index for index, *_ in found]]
        recognizer = EmotionRecognizer(args.model)

        def accuracy(crop_box):
            crops = np.stack([face_pixels(frame, crop_box(frame, box, square)) for _, frame, box, square in found])
            return float((recognizer.classify(crops).argmax(axis=1) == truth).mean())

        box_crops = np.stack([face_pixels(frame, box) for _, frame, box, _ in found])

        def accuracy_with_views(mode):
            # The classifier itself, one view per call: the recognizer would add its own mirror image.
            views = [recognizer.classifier(view[..., None].astype(np.float32))
                     for view in augmented_views(box_crops, mode)]
            return float((np.mean(views, axis=0).argmax(axis=1) == truth).mean())

        geometry = np.array([(bw / side, (bx + bw / 2 - x) / side - 0.5, (by + bh / 2 - y) / side - 0.5)
                             for _, _, (bx, by, bw, bh), (x, y, side) in found])
        result = {
            "faces": len(images), "found": len(found),
            "box_width_over_square": {q: float(np.percentile(geometry[:, 0], p)) for q, p in
                                      (("q1", 25), ("median", 50), ("q3", 75))},
            "centre_offset_over_square": {"x_median": float(np.median(geometry[:, 1])),
                                          "y_median": float(np.median(geometry[:, 2]))},
            "accuracy_square": accuracy(lambda frame, box, square: (square[0], square[1], square[2], square[2])),
            "accuracy_by_margin": {str(m): accuracy(lambda frame, box, square, m=m: widened(box, m, frame.shape))
                                   for m in args.margins},
            "accuracy_through_box_by_views": {mode: accuracy_with_views(mode) for mode in TTA_MODES},
        }
        if args.json:
            print(json.dumps(result))
            return
        width = result["box_width_over_square"]
        print(f"{result['found']} of {result['faces']} validation faces found; the box's width is "
              f"{width['median']:.3f} of the face's square (quartiles {width['q1']:.3f}-{width['q3']:.3f}), "
              f"its centre {result['centre_offset_over_square']['x_median']:+.3f}, "
              f"{result['centre_offset_over_square']['y_median']:+.3f} of the square off the square's")
        print(f"{'crop':<34} accuracy")
        for margin, value in result["accuracy_by_margin"].items():
            print(f"{'the box' if float(margin) == 1.0 else f'the box x{margin}':<34} {value:.4f}")
        print(f"{'the exact square':<34} {result['accuracy_square']:.4f}")
        names = {"none": "one view", "mirror": "with the mirror image", "full": f"{TTA_VIEW_COUNT} views",
                 "ten-crop": "ten crops"}
        print("through the box, by test-time views: " + ", ".join(
            f"{names[mode]} {value:.4f}" for mode, value in result["accuracy_through_box_by_views"].items()))


if __name__ == "__main__":
    sys.exit(main())
