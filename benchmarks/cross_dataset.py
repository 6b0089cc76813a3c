#!/usr/bin/env python3
"""Accuracy outside FER2013: folders of labelled expression photos through the whole pipeline, beside `fer`.

A webcam is not FER2013. This runs full photos (head and shoulders, not 48x48 crops) through what
`recognition.py --image DIR --json --no-display` does: the Haar cascade finds the faces, each is
cropped and classified (averaged with its mirror image), and the LARGEST face is the photo's answer.
It calls the Python API that command uses, EmotionRecognizer().detect_many, on a chunk of photos at
a time: the same code path, without writing one JSON line per photo. A photo in which no face is
found counts as wrong. The `fer` package's FER().detect_emotions (its own cascade settings, crop and
model) gets the same decoded photos and is scored the same way.

Each folder holds one subfolder per emotion, DIR/<emotion>/*.jpg|png|tiff; names are matched without
regard to case, with common aliases (anger, fearful, happiness, sadness, surprised, ...). Contempt,
which FER2013 lacks, and unknown names are left out with a note. Per folder it prints the photos,
the faces found, accuracy, macro recall (the mean of the classes' recalls), each class's recall and
how often each class is predicted. Use such photos for evaluation only, never for training.

    pip install --no-deps fer==25.10.3 requests Pillow "setuptools<81"   # fer's own list pulls in PyTorch
    python benchmarks/cross_dataset.py ~/evalsets/jaffe ~/evalsets/kdef
    python benchmarks/cross_dataset.py photos/ --skip-fer --json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from emotion_recognition.cli import HelpFormatter, add_standard_options
from emotion_recognition.config import CLASS_NAMES, DEFAULT_MODEL_PATH
from emotion_recognition.errors import UserError, friendly_errors
from emotion_recognition.runtime import cpu_description

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}  # what expression sets come as
# Folder names other sets use for this project's classes (KDEF says "afraid", CK+ "anger", ...).
ALIASES = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "afraid": "fear", "happiness": "happy",
           "calm": "neutral", "sadness": "sad", "surprised": "surprise"}
NOT_LEARNED = {"contempt", "contemptuous"}  # FER2013 has no such class: no answer could be right
CHUNK = 32                                  # photos decoded and classified at a time, to bound memory
NO_FACE = "no face"
FER_VERSION = "25.10.3"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("folders", nargs="+", metavar="DIR", help="a set of photos in emotion subfolders")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="the .keras model to classify with")
    parser.add_argument("--skip-fer", action="store_true", help="measure this project only, without fer")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_standard_options(parser)
    return parser.parse_args(argv)


def class_of(folder_name):
    """This project's class for an emotion folder's name, or None."""
    name = folder_name.lower()
    return name if name in CLASS_NAMES else ALIASES.get(name)


def list_photos(folder):
    """(path, label index) for every photo in `folder`'s emotion subfolders; notes on stderr for the rest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give folders laid out as DIR/<emotion>/*.jpg")
    photos = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        name = class_of(sub.name)
        if name is None:
            why = "FER2013 has no such class" if sub.name.lower() in NOT_LEARNED else "not an emotion this model knows"
            print(f"note: left out {sub} ({len(files)} photos): {why}", file=sys.stderr)
            continue
        photos += [(path, CLASS_NAMES.index(name)) for path in files]
    if not photos:
        raise UserError(f"no photos in emotion subfolders of {folder}; lay it out as {folder}/happy/*.jpg, "
                        f"with folders named {', '.join(CLASS_NAMES)}")
    return photos


def fer_detector():
    """fer's name with its version, and its detector, warmed up with its start-up notices hidden."""
    from emotion_recognition.runtime import import_tensorflow, native_output_silenced

    try:
        import_tensorflow()  # fer imports TensorFlow; this keeps its notices quiet
        import fer
        from fer.fer import FER
    except ImportError as error:
        raise UserError(f"the fer package is not installed ({error}); run: pip install --no-deps "
                        f'fer=={FER_VERSION} requests Pillow "setuptools<81", or add --skip-fer') from error
    with native_output_silenced(stdout=False):
        detector = FER()
        detector.detect_emotions(np.zeros((64, 64, 3), np.uint8), face_rectangles=[(0, 0, 64, 64)])
    return f"fer {fer.__version__}", detector


def largest(boxes):
    """The index of the largest (x, y, w, h) box, or None for none."""
    return max(range(len(boxes)), key=lambda i: boxes[i][2] * boxes[i][3]) if len(boxes) else None


def ours_answers(recognizer, frames):
    """The class index of each frame's largest face by this project, -1 where none is found."""
    answers = []
    for faces in recognizer.detect_many(frames):
        best = largest([face.box for face in faces])
        answers.append(-1 if best is None else CLASS_NAMES.index(faces[best].emotion))
    return answers


def fer_answers(detector, frames):
    """The same by fer (its scores are rounded to 2 places; a tie goes to the first in its own order)."""
    answers = []
    for frame in frames:
        faces = detector.detect_emotions(frame)
        best = largest([face["box"] for face in faces])
        emotions = faces[best]["emotions"] if best is not None else None
        answers.append(-1 if best is None else CLASS_NAMES.index(max(emotions, key=emotions.get)))
    return answers


def run_set(name, photos, tools):
    """Every tool's answers on one set's photos, and the seconds each took (decoding not counted)."""
    from tqdm import tqdm

    from emotion_recognition.media import read_image_or_none

    labels, answers, seconds = [], {name: [] for name in tools}, dict.fromkeys(tools, 0.0)
    with tqdm(total=len(photos), unit="photo", desc=name, file=sys.stderr, leave=False) as progress:
        for start in range(0, len(photos), CHUNK):
            chunk = [(read_image_or_none(path), label, path) for path, label in photos[start:start + CHUNK]]
            for _, _, path in (item for item in chunk if item[0] is None):
                progress.write(f"warning: skipped {path}: not a readable image", file=sys.stderr)
            frames = [frame for frame, _, _ in chunk if frame is not None]
            labels += [label for frame, label, _ in chunk if frame is not None]
            for name, answer in tools.items():
                started = time.perf_counter()
                answers[name] += answer(frames)
                seconds[name] += time.perf_counter() - started
            progress.update(len(chunk))
    if not labels:
        raise UserError(f"none of the {len(photos)} photos of {name} is a readable image")
    return np.array(labels), {name: np.array(a) for name, a in answers.items()}, seconds


def score(labels, answers, seconds):
    present = [i for i in range(len(CLASS_NAMES)) if (labels == i).any()]
    recall = {name: float((answers[labels == i] == i).mean()) if i in present else None
              for i, name in enumerate(CLASS_NAMES)}
    predicted = {name: float((answers == i).mean()) for i, name in enumerate(CLASS_NAMES)}
    return {"faces": int((answers >= 0).sum()), "accuracy": float((answers == labels).mean()),
            "macro_recall": float(np.mean([recall[CLASS_NAMES[i]] for i in present])), "recall": recall,
            "predicted": {**predicted, NO_FACE: float((answers < 0).mean())}, "seconds": round(seconds, 2)}


def print_set(result):
    rows, width = result["results"], max(len(row["model"]) for row in result["results"]) + 2
    share = {name: count / result["photos"] for name, count in result["per_class"].items()}
    print(f"\n{result['name']}: {result['photos']} photos in {result['folder']}")
    print(f"{'':<{width}}{'faces':>10} {'accuracy':>9} {'macro recall':>13} {'s/photo':>8}")
    for row in rows:
        print(f"{row['model']:<{width}}{row['faces']:>4} found {row['accuracy']:>9.1%} {row['macro_recall']:>13.1%} "
              f"{row['seconds'] / result['photos']:>8.3f}")
    columns = list(CLASS_NAMES) + [NO_FACE]
    print(f"{'recall by class':<{width}}" + "".join(f"{c[:8]:>9}" for c in CLASS_NAMES))
    for row in rows:
        print(f"{row['model']:<{width}}" + "".join("        -" if row["recall"][c] is None else f"{row['recall'][c]:>9.1%}"
                                                  for c in CLASS_NAMES))
    print(f"{'share predicted':<{width}}" + "".join(f"{c[:8]:>9}" for c in columns))
    print(f"{'(truth)':<{width}}" + "".join(f"{share.get(c, 0.0):>9.1%}" for c in CLASS_NAMES) + f"{'-':>9}")
    for row in rows:
        print(f"{row['model']:<{width}}" + "".join(f"{row['predicted'][c]:>9.1%}" for c in columns))


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        from emotion_recognition.recognizer import EmotionRecognizer

        sets = {folder: list_photos(folder) for folder in args.folders}  # a bad folder fails before any model loads
        recognizer = EmotionRecognizer(args.model)
        tools = {f"this project ({Path(args.model).name})": lambda frames: ours_answers(recognizer, frames)}
        if not args.skip_fer:
            fer_name, detector = fer_detector()
            tools[fer_name] = lambda frames: fer_answers(detector, frames)
        results = []
        if not args.json:
            print(f"s/photo: seconds per photo (decoding not counted) on {cpu_description()}")
        for folder, photos in sets.items():
            name = Path(folder).resolve().name
            labels, answers, seconds = run_set(name, photos, tools)
            results.append({"name": name, "folder": str(folder), "photos": len(labels),
                            "per_class": {c: int((labels == i).sum()) for i, c in enumerate(CLASS_NAMES)},
                            "results": [{"model": tool, **score(labels, answers[tool], seconds[tool])}
                                        for tool in tools]})
            if not args.json:
                print_set(results[-1])
        if args.json:
            print(json.dumps({"cpu": cpu_description(), "sets": results}))


if __name__ == "__main__":
    main()
