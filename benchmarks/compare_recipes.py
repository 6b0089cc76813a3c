#!/usr/bin/env python3
"""Short training runs of several recipes, side by side, scored on the validation slice of train/.

Each variant is `python train.py` with a few options changed, run for the same (small) number of
epochs with the same seed, so the split and the order of the batches are shared. The table is
scored on the validation slice that train.py holds out of train/ (never on test/), so that choosing
a recipe from it does not tune on the split the README reports. Runs are kept under --runs-dir and a
run that was cut short is resumed, so the whole comparison can be interrupted and started again.

    python benchmarks/compare_recipes.py --epochs 8                 # every variant below
    python benchmarks/compare_recipes.py --epochs 8 --only crops-sgd width-32
    python benchmarks/compare_recipes.py --epochs 30 --runs-dir runs/confirm --only width-32-adamw
    KERAS_BACKEND=jax python benchmarks/compare_recipes.py --epochs 63 --runs-dir runs/long \
        --only width-32 width-32-adamw width-32-adamw-head-1024 width-32-adamw-stage-dropout-1

Short runs favour small, lightly regularised models; read the table as "what helps early", and
give a change that costs speed (a wider model) the same wall-clock time before you believe it.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from emotion_recognition.cli import HelpFormatter
from emotion_recognition.config import CLASS_NAMES, DEFAULT_DATA_DIR, DEFAULT_RUNS_DIR
from emotion_recognition.errors import UserError, friendly_errors

# train.py's exit status after Ctrl-C or SIGTERM (128 + SIGINT), with its last finished epoch saved.
INTERRUPTED = 130
# train.py's defaults when these comparisons began (width 16, a 256-unit head, full stage dropout):
# every variant pins them, so that a row means the same recipe whatever train.py's defaults are now.
PINNED = ["--base-width", "16", "--dense-units", "256", "--dense-dropout", "0.4", "--stage-dropout", "1.0"]
# The recipe every variant below starts from: the published FER2013 recipes' ingredients (random
# 40-px crops, SGD with Nesterov momentum) at the width that trains fastest here.
BASE = [*PINNED, "--crop-size", "40", "--optimizer", "sgd", "--learning-rate", "0.01", "--weight-decay", "5e-4"]
# The short runs' winners together: crops, AdamW, and the width that bought the most.
WIDTH_32_ADAMW = [*BASE, "--base-width", "32", "--stage-dropout", "0.5", "--optimizer", "adamw",
                  "--learning-rate", "2e-3", "--weight-decay", "1e-4"]
# name -> train.py options; later options override earlier ones
VARIANTS = {
    "crops-sgd": BASE,
    "shifts-adamw": [*PINNED, "--crop-size", "48", "--optimizer", "adamw", "--learning-rate", "2e-3",
                     "--weight-decay", "1e-4"],           # the recipe of the model shipped before crops
    "crops-adamw": [*BASE, "--optimizer", "adamw", "--learning-rate", "2e-3", "--weight-decay", "1e-4"],
    "crops-sgd-lr0.05": [*BASE, "--learning-rate", "0.05"],  # SGD lags in short runs: is its rate too low?
    "no-class-weights": [*BASE, "--class-weight-power", "0"],
    "head-1024": [*BASE, "--dense-units", "1024", "--dense-dropout", "0.5"],
    "width-24": [*BASE, "--base-width", "24"],
    "width-32": [*BASE, "--base-width", "32", "--stage-dropout", "0.5"],
    "width-64": [*BASE, "--base-width", "64", "--stage-dropout", "0.5"],
    "width-32-adamw": WIDTH_32_ADAMW,
    # Long runs (63 epochs) of the winner against the published ingredients it had left out: the wide
    # head and SGD (width-32 above), and against more dropout. The first is train.py's default recipe.
    "width-32-adamw-head-1024": [*WIDTH_32_ADAMW, "--dense-units", "1024", "--dense-dropout", "0.5"],
    "width-32-adamw-stage-dropout-1": [*WIDTH_32_ADAMW, "--stage-dropout", "1.0"],
    # The default recipe's 150-epoch model against the average of two of them (seeds 1337 and 1338):
    # what train.py publishes by default.
    "width-32-adamw-head-1024-x2": [*WIDTH_32_ADAMW, "--dense-units", "1024", "--dense-dropout", "0.5",
                                    "--members", "2"],
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="folder holding train/ and test/")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (the cosine schedule fits them)")
    parser.add_argument("--runs-dir", default=str(DEFAULT_RUNS_DIR / "recipes"),
                        help="where each variant's run and model go")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed (initial weights, batch order, augmentation) for a second "
                             "opinion; runs are kept apart per seed, the validation slice stays the same")
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="run just these variants")
    parser.add_argument("--json", action="store_true", help="print the table as JSON lines")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def run_name(name, args):
    return name if args.seed is None else f"{name}-seed{args.seed}"


def run_variant(name, options, args):
    """Train one variant to --epochs, resuming a run an earlier call left unfinished."""
    runs_dir = Path(args.runs_dir)
    run_dir, output = runs_dir / run_name(name, args), runs_dir / f"{run_name(name, args)}.keras"
    state = read_state(run_dir)
    if output.is_file() and state.get("epochs_done") == args.epochs:
        return state
    # One model per variant unless the variant asks for more (its own --members comes later and wins); no
    # final epochs, which would train on the validation slice that the table compares on.
    command = [sys.executable, "-m", "emotion_recognition.cli.train", "--data", args.data, "--epochs", str(args.epochs),
               "--run-dir", str(run_dir), "--output", str(output), "--quiet", "--members", "1",
               "--final-epochs", "0", *options]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    if state and state["config"]["epochs"] != args.epochs:
        # Never discard a run of another length: it may be the result of hours.
        raise UserError(f"{run_dir} holds a run of {state['config']['epochs']} epochs, not {args.epochs}; "
                        "give this length its own --runs-dir")
    if state.get("epochs_started"):
        command.append("--resume")
    elif run_dir.exists():
        command.append("--restart")
    print(f"[{name}] {' '.join(options) or '(defaults)'}: training {args.epochs} epochs ...", file=sys.stderr)
    returncode = subprocess.run(command).returncode
    if returncode == INTERRUPTED:
        raise UserError(f"the run of variant '{name}' was interrupted; the same command resumes it", exit_code=INTERRUPTED)
    if returncode != 0:
        raise UserError(f"the run of variant '{name}' failed (see above); its checkpoints are in {run_dir}")
    return read_state(run_dir)


def read_state(run_dir):
    """What the table needs from a run folder's state.json, or from its models' (member-1/, ...) taken
    together: the config, the epochs each model finished, the best epoch(s) and the training time."""
    files = sorted(Path(run_dir).glob("member-*/state.json")) or [Path(run_dir) / "state.json"]
    states = [json.loads(file.read_text()) for file in files if file.is_file()]
    if not states:
        return {}
    return {"config": states[0]["config"], "epochs_done": min(state["epochs_done"] for state in states),
            "epochs_started": max(state["epochs_done"] for state in states),  # > 0: resume, never restart
            "best_epoch": "+".join(str(state.get("best_epoch")) for state in states),
            "train_seconds": sum(state.get("train_seconds", 0.0) for state in states),
            "images_trained": sum(state["epochs_done"] * state.get("train_images", 0) for state in states)}


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        from emotion_recognition.runtime import import_tensorflow

        import_tensorflow()  # before Keras, so that TensorFlow's start-up notices stay hidden
        from emotion_recognition import data, evaluation
        from emotion_recognition.model import load_model
        from emotion_recognition.recipe import TrainConfig

        data.check_dataset(args.data)
        names = args.only or list(VARIANTS)
        started = time.time()
        states = {name: run_variant(name, VARIANTS[name], args) for name in names}

        # The same slice train.py held out: same split function, fraction and seed.
        defaults = TrainConfig()
        images, labels, _ = data.load_split(Path(args.data) / "train", verbose=False)
        _, val_idx = data.stratified_split(labels, defaults.val_split, data.VALIDATION_SEED)
        rows = []
        for name in names:
            state = states[name]
            model = load_model(Path(args.runs_dir) / f"{run_name(name, args)}.keras")
            report = evaluation.evaluate(model, images[val_idx], labels[val_idx])
            seconds = state.get("train_seconds", 0.0)
            rows.append({
                "variant": run_name(name, args), "options": " ".join(VARIANTS[name]) or "(defaults)",
                "epochs": state["epochs_done"], "best_epoch": state.get("best_epoch"),
                "val_accuracy": report["accuracy"], "val_accuracy_mirror": report["accuracy_mirror"],
                "val_accuracy_tta": report["accuracy_tta"],
                "val_accuracy_ten_crop": report["accuracy_ten_crop"],
                "val_macro_f1": report["macro_f1"],
                "val_recall": {c: report["per_class"][c]["recall"] for c in CLASS_NAMES},
                "minutes": round(seconds / 60, 1),
                "images_per_second": round(state["images_trained"] / max(seconds, 1e-9)),
            })
        if args.json:
            for row in rows:
                print(json.dumps(row))
            return
        print(f"validation slice of {Path(args.data) / 'train'}: {len(val_idx)} images; "
              f"{args.epochs} epochs per run; this call took {(time.time() - started) / 60:.0f} min")
        header = (f"{'variant':30} {'val acc':>7} {'+mirror':>7} {'+TTA':>6} {'10-crop':>7} {'F1':>5} {'disgust':>7} {'min':>5} "
                  f"{'img/s':>5}  options")
        print(header)
        print("-" * len(header))
        for row in rows:
            print(f"{row['variant']:30} {row['val_accuracy']:7.2%} {row['val_accuracy_mirror']:7.2%} "
                  f"{row['val_accuracy_tta']:6.2%} {row['val_accuracy_ten_crop']:7.2%} "
                  f"{row['val_macro_f1']:5.3f} {row['val_recall']['disgust']:7.1%} {row['minutes']:5.1f} "
                  f"{row['images_per_second']:5d}  {row['options']}")


if __name__ == "__main__":
    main()
