"""Score a trained model on a labelled folder (one subfolder per emotion).

    emotion-evaluate                                   # the shipped model on dataset/FER2013/test
    emotion-evaluate --model my.keras --data DIR --json

(`python evaluate.py ...` in a clone does the same.)
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import HelpFormatter, add_standard_options
from ..config import CLASS_NAMES, DEFAULT_DATA_DIR, DEFAULT_MODEL_PATH, MODELS_DIR
from ..errors import check_writable, friendly_errors

ADVICE = {"no-dataset": "or pass --data DIR"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Accuracy without and with test-time augmentation (the mirror image; 18 views; ten crops: "
                    "accuracy_ten_crop), per-class precision, recall and F1, macro F1, and a confusion-matrix PNG.",
        formatter_class=HelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="trained .keras model")
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR / "test"),
                        help="folder with one subfolder of images per emotion (all seven, or those you have: "
                             "a missing emotion is not scored); a dataset folder holding train/ and test/, as "
                             "train.py takes, is scored on its test/")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--confusion-png", metavar="PATH",
                        help="where the confusion matrix goes (default: <model>.confusion.png beside the model; for "
                             "the shipped model, whose PublicTest figure ships with it, in the temporary folder)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="faces per prediction call; smaller needs less memory")
    add_standard_options(parser)
    return parser.parse_args(argv)


def scored_folder(folder):
    """The folder of emotion folders to score: `folder` itself, or the test/ split of a dataset folder
    (train/ and test/, the layout train.py takes), which is what scoring a dataset means."""
    folder = Path(folder)
    if (folder / "test").is_dir() and not any((folder / name).is_dir() for name in CLASS_NAMES):
        held_out = folder / "private_test"  # written by emotion-from-csv
        print(f"note: {folder} holds the splits of a dataset; scoring its test/ split"
              + (f" (--data {held_out} scores the held-back PrivateTest faces)" if held_out.is_dir() else ""),
              file=sys.stderr)
        return folder / "test"
    return folder


def default_confusion_png(model):
    """<model>.confusion.png beside the model, except for a model shipped in the package: the figure
    beside it is its PublicTest one, which the model card shows, so a score of other faces goes to the
    temporary folder instead (not into whatever folder the user stands in; an installed package's
    folder may not even be writable)."""
    model = Path(model)
    png = model.with_suffix(".confusion.png")
    return Path(tempfile.gettempdir()) / png.name if model.resolve().parent == MODELS_DIR.resolve() else png


def short_path(folder):
    """The last two parts of a folder (FER2013/test): enough to name it, nothing about the machine."""
    return "/".join(Path(folder).resolve().parts[-2:])


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug, ADVICE):
        from ..runtime import import_tensorflow

        import_tensorflow()  # before Keras, so that TensorFlow's start-up notices stay hidden
        from .. import data, evaluation, plots
        from ..files import save_figure
        from ..model import load_model

        png = Path(args.confusion_png) if args.confusion_png else default_confusion_png(args.model)
        check_writable(png, "--confusion-png")
        model = load_model(args.model)
        folder = scored_folder(args.data)
        images, labels, skipped = data.load_split(folder, verbose=not args.json, all_classes=False)
        data.report_skipped(skipped)
        absent = [name for name, count in zip(CLASS_NAMES, data.class_counts(labels)) if count == 0]
        if absent:
            print(f"note: no faces of {', '.join(absent)} in {folder}: their recall is not measured, and "
                  "macro F1 averages the other emotions", file=sys.stderr)
        report = evaluation.evaluate(model, images, labels, batch_size=args.batch_size, verbose=not args.json)
        report.update(model=str(args.model), data=str(folder), parameters=int(model.count_params()))
        figure = plots.plot_confusion_matrix(report["confusion_matrix"],
                                             title=f"{Path(args.model).name} on {short_path(folder)}")
        save_figure(figure, png, dpi=120)
        if args.json:
            print(json.dumps(report))
        else:
            print(evaluation.format_report(report, title=str(folder)))
        print(f"confusion matrix: {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
