"""Scoring a model on a labelled folder: accuracy (with and without test-time augmentation),
per-class precision/recall/F1, and the confusion matrix."""

import cv2
import keras
import numpy as np

from .config import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from .model import crop_size_of
from .recipe import CROP_SIZE

# Test-time augmentation averages the model's answers over small changes of the same kinds that
# training augments with: the face and its mirror image, each as is, shifted, zoomed and turned. The set
# was chosen on the validation slice of train/, never on test/ (docs/model-card.md has the figures).
TTA_SHIFTS = ((2, 0), (-2, 0), (0, 2), (0, -2))  # pixels
TTA_ZOOMS = (0.95, 1.05)
TTA_ROTATIONS = (-5.0, 5.0)  # degrees
TTA_MODES = ("none", "mirror", "full", "ten-crop")
TTA_VIEW_COUNT = 2 * (1 + len(TTA_SHIFTS) + len(TTA_ZOOMS) + len(TTA_ROTATIONS))
# Ten-crop testing, as in the published FER2013 recipes: the four corner crops and the centre crop,
# each also mirrored. A model that centre-crops (model.FaceCrop) sees a corner crop when the face
# is shifted by the crop margin; a model without crops gets the margin of the default crop.
TEN_CROP_CORNERS = ((1, 1), (1, -1), (-1, 1), (-1, -1))
# Passes of the model over the faces that each mode takes (evaluate()'s progress bar counts them).
VIEW_COUNTS = {"none": 1, "mirror": 2, "full": TTA_VIEW_COUNT, "ten-crop": 2 * (1 + len(TEN_CROP_CORNERS))}


def _warp(faces, matrix):
    # Replicating the border avoids black edges the model never saw in training.
    return np.stack([cv2.warpAffine(face, matrix, (IMAGE_SIZE, IMAGE_SIZE), borderMode=cv2.BORDER_REPLICATE)
                     for face in faces])


def augmented_views(images, mode="full", crop_size=CROP_SIZE):
    """Yield the views of uint8 faces (n, 48, 48) that test-time augmentation averages over.

    crop_size is the crop the model looks at; only "ten-crop" uses it.
    """
    if mode not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {mode!r}; use one of {TTA_MODES}")
    centre = ((IMAGE_SIZE - 1) / 2, (IMAGE_SIZE - 1) / 2)
    orientations = (images,) if mode == "none" else (images, np.ascontiguousarray(images[:, :, ::-1]))
    margin = (IMAGE_SIZE - (crop_size if crop_size < IMAGE_SIZE else CROP_SIZE)) // 2
    for faces in orientations:
        yield faces
        if mode == "ten-crop":
            for sign_x, sign_y in TEN_CROP_CORNERS:
                yield _warp(faces, np.float32([[1, 0, sign_x * margin], [0, 1, sign_y * margin]]))
        if mode != "full":
            continue
        for dx, dy in TTA_SHIFTS:
            yield _warp(faces, np.float32([[1, 0, dx], [0, 1, dy]]))
        for scale in TTA_ZOOMS:
            yield _warp(faces, cv2.getRotationMatrix2D(centre, 0, scale))
        for angle in TTA_ROTATIONS:
            yield _warp(faces, cv2.getRotationMatrix2D(centre, angle, 1))


def predict_probabilities(model, images, batch_size=256, tta="none", progress=None):
    """Class probabilities for uint8 faces (n, 48, 48), averaged over the views of `tta` (TTA_MODES).

    progress: a keras.utils.Progbar to advance by one per view, or None.
    """
    total, count = None, 0
    for view in augmented_views(images, tta, crop_size_of(model)):
        probabilities = model.predict(view[..., None].astype("float32"), batch_size=batch_size, verbose=0)
        total = probabilities if total is None else total + probabilities
        count += 1
        if progress is not None:
            progress.add(1)
    return total / count


def confusion_matrix(labels, predictions):
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def classification_report(labels, predictions):
    """Accuracy, macro F1 and per-class precision/recall/F1/support as a JSON-ready dict."""
    matrix = confusion_matrix(labels, predictions)
    true_positive = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    precision = np.divide(true_positive, predicted, out=np.zeros(NUM_CLASSES), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(NUM_CLASSES), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(NUM_CLASSES),
                   where=(precision + recall) > 0)
    present = actual > 0
    return {
        "n": int(matrix.sum()),
        "accuracy": float(true_positive.sum() / max(matrix.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        # A class with no faces has no recall (nor F1): null, not 0.
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]) if present[i] else None,
                   "f1": float(f1[i]) if present[i] else None, "support": int(actual[i])}
            for i, name in enumerate(CLASS_NAMES)
        },
        "confusion_matrix": matrix.tolist(),
    }


def evaluate(model, images, labels, batch_size=256, verbose=False):
    """The full report on the plain faces, plus accuracy (and macro F1) with test-time augmentation:
    accuracy_mirror averages each face with its mirror image, accuracy_tta over all TTA views.
    verbose: a progress bar over the views (31 passes over the faces in all)."""
    progress = keras.utils.Progbar(sum(VIEW_COUNTS.values()), unit_name="view") if verbose else None

    def predictions(tta):
        return predict_probabilities(model, images, batch_size, tta, progress).argmax(axis=1)

    plain, mirrored, augmented, ten_crop = (predictions(tta) for tta in ("none", "mirror", "full", "ten-crop"))
    report = classification_report(labels, plain)
    report["accuracy_mirror"] = float((mirrored == labels).mean())
    report["accuracy_tta"] = float((augmented == labels).mean())
    report["accuracy_ten_crop"] = float((ten_crop == labels).mean())
    report["macro_f1_tta"] = classification_report(labels, augmented)["macro_f1"]
    return report


def format_report(report, title="test"):
    lines = [f"{title}: {report['n']} images, accuracy {report['accuracy']:.2%}, "
             f"with the mirror image {report['accuracy_mirror']:.2%}, with {TTA_VIEW_COUNT}-view TTA "
             f"{report['accuracy_tta']:.2%}, ten-crop {report['accuracy_ten_crop']:.2%}; "
             f"macro F1 {report['macro_f1']:.3f} ({report['macro_f1_tta']:.3f} with TTA)",
             f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}   (without TTA)"]
    for name, row in report["per_class"].items():
        # With no faces of a class its recall (and so its F1) is not measured, not zero.
        recall, f1 = (f"{row['recall']:7.3f}", f"{row['f1']:6.3f}") if row["support"] else (f"{'-':>7}", f"{'-':>6}")
        lines.append(f"{name:>10} {row['precision']:9.3f} {recall} {f1} {row['support']:8d}")
    return "\n".join(lines)
