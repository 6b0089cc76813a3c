"""Figures: a run's training curves and a model's confusion matrix, as Matplotlib Figures.

A bare Figure needs no GUI backend and leaves pyplot's (a notebook's inline one) alone; files.save_figure
writes one to a PNG atomically.
"""

import numpy as np

from .config import CLASS_NAMES, NUM_CLASSES


def plot_history(history, resumed_after=()):
    """Loss and accuracy per epoch, training vs. validation, as a Matplotlib Figure; a dotted line
    marks each epoch after which the run was interrupted and resumed."""
    return plot_histories([(history, resumed_after)])


def plot_histories(runs):
    """plot_history for several models trained alike: runs holds one (history, resumed_after) each;
    each model has a colour of its own, its training curve dashed and its validation curve solid."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, key in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for number, (history, resumed_after) in enumerate(runs, start=1):
            epochs = np.arange(1, len(history) + 1)
            name = f"model {number}, " if len(runs) > 1 else ""
            colour = None if len(runs) == 1 else f"C{number - 1}"
            axes.plot(epochs, [h.get(key, np.nan) for h in history], label=f"{name}training {key}",
                      color=colour, linestyle="--" if colour else "-")
            axes.plot(epochs, [h.get(f"val_{key}", np.nan) for h in history], label=f"{name}validation {key}",
                      color=colour)
            for n, epoch in enumerate(resumed_after):  # between the last epoch before and the first after
                axes.axvline(epoch + 0.5, color="gray", linestyle=":",
                             label=f"{name}resumed" if n == 0 else None)
        axes.set_xlabel("epoch")
        axes.set_ylabel(key)
        axes.grid(alpha=0.3)
        axes.legend()
    accuracy_axes.set_title("training accuracy is on augmented faces")
    figure.tight_layout()
    return figure


def plot_confusion_matrix(matrix, title="Confusion matrix"):
    """A row-normalised confusion matrix (recall on the diagonal) as a Matplotlib Figure."""
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
    return figure
