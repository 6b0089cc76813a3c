#!/usr/bin/env python3
"""How many faces the Haar cascade finds, and how many false ones, under the settings you choose.

Each face of the validation slice of `train/` (the faces train.py holds out, never PublicTest) is
enlarged to 150-200 px on a 640x480 frame, as in face_framing.py: on a flat grey frame, and on
photos from scikit-image that hold no human face (coffee, a cat, a rocket, the moon, a page of text,
a microscope slide, galaxies), at full light and dimmed to 35 %, as in a dark room. The cascade
searches each frame as the recognizer does (upright and turned copies: `--search turned`; the upright
frame alone: `--search upright`; as a video's changed region is searched: `--search region`), after an
optional filter of the frame (OpenCV's own face-detection sample equalizes the histogram first). A face
counts as found when a box's centre lies on it; every other box is a false one.

    python benchmarks/detection.py
    python benchmarks/detection.py --filters none clahe --min-neighbors 3 5 --faces 500
"""

import argparse
import json
import sys
import time

import cv2
import numpy as np

from face_framing import FRAME_SIZE, draw_face, on_face, validation_faces
from emotion_recognition.cli import HelpFormatter
from emotion_recognition.config import DEFAULT_DATA_DIR
from emotion_recognition.errors import UserError, friendly_errors
from emotion_recognition.faces import MIN_NEIGHBORS
from emotion_recognition.runtime import cpu_description

BACKGROUND_PHOTOS = ("coffee", "chelsea", "rocket", "moon", "page", "immunohistochemistry", "hubble_deep_field")
DIM_LIGHT = 0.35       # a frame's brightness in a dark room, as a share of a lit one's
CLAHE_CLIP, CLAHE_TILES = 2.0, (8, 8)   # OpenCV's usual settings for local histogram equalization
FILTERS = {
    "none": lambda gray: gray,                       # what the recognizer does
    "equalize": cv2.equalizeHist,                    # the whole frame's histogram made flat
    "clahe": cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES).apply,  # the same, tile by tile
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="FER2013 folder holding train/")
    parser.add_argument("--faces", type=int, default=1000,
                        help="how many validation faces to draw in each condition (all: 2,872)")
    parser.add_argument("--filters", nargs="+", choices=sorted(FILTERS), default=list(FILTERS),
                        help="what is done to a frame before the search (none: as the recognizer searches)")
    parser.add_argument("--min-neighbors", type=int, nargs="+", default=[MIN_NEIGHBORS],
                        help="overlapping hits the cascade needs to accept a face (the recognizer's: "
                             f"{MIN_NEIGHBORS})")
    parser.add_argument("--search", nargs="+", choices=sorted(SEARCHES), default=list(SEARCHES),
                        help="turned: the upright frame and turned copies of it, as the recognizer searches; "
                             "upright: the upright frame alone; region: as a changed region of a video is searched")
    parser.add_argument("--seed", type=int, default=0, help="face sizes and places")
    parser.add_argument("--json", action="store_true", help="print one JSON object per row instead of a table")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def background_photos():
    """Grayscale FRAME_SIZE copies of scikit-image's sample photos without a human face."""
    import skimage.data

    photos = []
    for name in BACKGROUND_PHOTOS:
        image = getattr(skimage.data, name)()
        gray = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        photos.append(cv2.resize(gray, FRAME_SIZE, interpolation=cv2.INTER_AREA))
    return photos


SEARCHES = {
    "turned": lambda detector, gray: detector.detect_all(gray)[0],   # what the recognizer does
    "upright": lambda detector, gray: detector.detect(gray),         # the upright frame alone
    # the whole frame searched as a region that changed in a video is (upright, else turned copies)
    "region": lambda detector, gray: detector.detect_in_all(gray, (0, 0, gray.shape[1], gray.shape[0]))[0],
}


def measure(detector, search, images, backgrounds, light, frame_filter, seed):
    """(faces found, false boxes, milliseconds per frame) over one frame per face."""
    rng = np.random.default_rng(seed)  # the same sizes and places for every filter and setting
    found = false = 0
    seconds = 0.0
    for index, image in enumerate(images):
        frame, square = draw_face(image, rng, backgrounds[index % len(backgrounds)] if backgrounds else None)
        frame = cv2.convertScaleAbs(frame, alpha=light)
        started = time.perf_counter()
        boxes = search(detector, frame_filter(frame))
        seconds += time.perf_counter() - started
        on = [on_face(box, square) for box in boxes]
        found += any(on)
        false += on.count(False)
    return found, false, 1000 * seconds / len(images)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        from emotion_recognition.faces import FaceDetector

        if args.faces < 1:
            raise UserError(f"--faces must be 1 or more, not {args.faces}")
        images = validation_faces(args.data)[0][:args.faces]
        conditions = [("grey", None), ("photos", background_photos())]
        if not args.json:
            print(f"{len(images)} validation faces per row, one frame each; {cpu_description()}")
            print(f"{'background':<10} {'light':>5} {'filter':<9} {'search':<8} {'neighbours':>10} {'found':>13} "
                  f"{'false boxes':>11} {'ms/frame':>8}")
        for background, photos in conditions:
            for light in (1.0, DIM_LIGHT):
                for min_neighbors in args.min_neighbors:
                    detector = FaceDetector(min_neighbors=min_neighbors)
                    for name in args.filters:
                        for search in args.search:
                            found, false, ms = measure(detector, SEARCHES[search], images, photos, light,
                                                       FILTERS[name], args.seed)
                            row = {"background": background, "light": light, "filter": name, "search": search,
                                   "min_neighbors": min_neighbors, "faces": len(images), "found": found,
                                   "false_boxes": false, "ms_per_frame": round(ms, 2)}
                            if args.json:
                                print(json.dumps(row), flush=True)
                            else:
                                print(f"{background:<10} {light:>5.2f} {name:<9} {search:<8} {min_neighbors:>10} "
                                      f"{found:>5} ({found / len(images):.3f}) {false:>11} {ms:>8.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
