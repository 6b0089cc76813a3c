"""Scoring a model on a labelled folder: accuracy (with and without test-time augmentation),
per-class precision/recall/F1, and the confusion matrix."""

import numpy as np

from .config import CLASS_NAMES, NUM_CLASSES


def predict_probabilities(model, images, batch_size=256, tta=False):
    """Class probabilities for uint8 faces (n, 48, 48); with tta, averaged with the mirrored face."""
    x = images.reshape(-1, *images.shape[1:3], 1).astype("float32")
    probabilities = model.predict(x, batch_size=batch_size, verbose=0)
    if tta:
        # A face and its mirror image show the same emotion; averaging both steadies the guess.
        probabilities = (probabilities + model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0)) / 2
    return probabilities


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
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(actual[i])}
            for i, name in enumerate(CLASS_NAMES)
        },
        "confusion_matrix": matrix.tolist(),
    }


def evaluate(model, images, labels, batch_size=256):
    """The full report, plus accuracy_tta: accuracy with mirrored-face test-time augmentation."""
    plain = predict_probabilities(model, images, batch_size).argmax(axis=1)
    mirrored = predict_probabilities(model, images, batch_size, tta=True).argmax(axis=1)
    report = classification_report(labels, plain)
    report["accuracy_tta"] = float((mirrored == labels).mean())
    report["macro_f1_tta"] = classification_report(labels, mirrored)["macro_f1"]
    return report


def format_report(report, title="test"):
    lines = [f"{title}: {report['n']} images, accuracy {report['accuracy']:.2%}, "
             f"with mirror TTA {report['accuracy_tta']:.2%}, macro F1 {report['macro_f1']:.3f}",
             f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, row in report["per_class"].items():
        lines.append(f"{name:>10} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} "
                     f"{row['support']:8d}")
    return "\n".join(lines)


def plot_confusion_matrix(matrix, path, title="Confusion matrix"):
    """Save a row-normalised confusion matrix (recall on the diagonal) as a PNG."""
    # A bare Figure needs no GUI backend and leaves pyplot's (a notebook's inline one) alone.
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix, dtype=float)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(7, 6))
    axes = figure.subplots()
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    axes.set_xticks(range(NUM_CLASSES), CLASS_NAMES, rotation=45, ha="right")
    axes.set_yticks(range(NUM_CLASSES), CLASS_NAMES)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    for i in range(NUM_CLASSES):
        for j in range(NUM_CLASSES):
            axes.text(j, i, f"{normalised[i, j]:.2f}\n({int(matrix[i, j])})", ha="center", va="center",
                      fontsize=7, color="white" if normalised[i, j] > 0.5 else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
