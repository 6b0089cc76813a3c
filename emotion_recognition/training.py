"""Training: the recipe, the augmentation, checkpoints that survive interruption, and the report.

`train.py` is the command-line front end; everything it does is here so a notebook can do it too.
"""

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import data, evaluation
from .config import CLASS_NAMES, DEFAULT_DATA_DIR, DEFAULT_MODEL_PATH, NUM_CLASSES
from .errors import UserError, ensure_folder
from .model import BASE_WIDTH, build_model, load_model, save_model_atomic


@dataclass
class TrainConfig:
    """Everything that defines a training run. The defaults reproduce the shipped model."""

    data: str = str(DEFAULT_DATA_DIR)
    output: str = str(DEFAULT_MODEL_PATH)
    run_dir: str = ""              # checkpoints and logs; default: runs/<output name>/ beside the output
    epochs: int = 60               # about two hours on a 2-core CPU (121 min for the shipped run)
    batch_size: int = 64           # small batches regularise; larger ones gained no speed on 2 cores
    val_split: float = 0.1         # a stratified slice of train/ for model selection; test/ stays unseen
    seed: int = 1337
    learning_rate: float = 2e-3    # peak AdamW rate, reached after one warm-up epoch, then cosine to 0
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1   # FER2013 labels are noisy; smoothing keeps the model from trusting them
    class_weight_power: float = 0.5  # weight = (largest class / class) ** power; 0.5 rescues disgust
    #                                  (16x rarer than happy) without wrecking the common classes
    base_width: int = BASE_WIDTH   # channels of the first conv stage; see model.py for the speed trade-off
    random_erasing: float = 0.5    # chance that a training face gets a random patch blanked out

    def resolved_run_dir(self):
        if self.run_dir:
            return Path(self.run_dir)
        output = Path(self.output)
        return output.parent / "runs" / output.stem


# What a resumed run takes from its own log rather than from the command line.
RECIPE_FIELDS = ("epochs", "batch_size", "val_split", "seed", "learning_rate", "weight_decay",
                 "label_smoothing", "class_weight_power", "base_width", "random_erasing")


def make_augmenter(erase_probability=TrainConfig.random_erasing, seed=None):
    """Keras' ImageDataGenerator with the classic FER2013 augmentations, plus random erasing."""
    rng = np.random.default_rng(seed)

    def random_erase(image):
        # Hiding a random patch forces the model to read the whole face, not one cue.
        if rng.random() < erase_probability:
            height, width = image.shape[:2]
            h, w = rng.integers(height // 8, height // 3, endpoint=True, size=2)
            top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            image[top:top + h, left:left + w] = rng.uniform(0, 255)
        return image

    return tf.keras.preprocessing.image.ImageDataGenerator(
        rotation_range=10,
        width_shift_range=0.1,
        height_shift_range=0.1,
        zoom_range=0.1,
        horizontal_flip=True,
        fill_mode="nearest",
        preprocessing_function=random_erase,
    )


def class_sample_weights(labels, power):
    counts = data.class_counts(labels).astype(float)
    per_class = (counts.max() / np.maximum(counts, 1)) ** power
    weights = per_class[labels]
    return (weights / weights.mean()).astype("float32")


def compile_model(model, config, steps_per_epoch):
    total_steps = config.epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10,
        decay_steps=max(total_steps - steps_per_epoch, 1),
        warmup_target=config.learning_rate,
        warmup_steps=steps_per_epoch,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


class RunState:
    """The files of one run: last checkpoint (with optimizer), best model so far, and a JSON log."""

    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        self.last = self.dir / "last.keras"
        self.best = self.dir / "best.keras"
        self.state_file = self.dir / "state.json"

    def exists(self):
        return self.state_file.is_file() and self.last.is_file()

    def read(self):
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read {self.state_file} ({error}); start a new run with --restart") from error

    def write(self, state):
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.state_file)


class DeferredInterrupts:
    """Ctrl-C and SIGTERM stop training, but never in the middle of writing an epoch's files."""

    def __init__(self):
        self.saving = False
        self.pending = False

    def handle(self, signum, frame):
        if self.saving:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def shielded(self):
        self.saving = True
        try:
            yield
        finally:
            self.saving = False
        if self.pending:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: the last checkpoint, the best model by validation accuracy, and the log.

    Every file is written to a temporary name first and then renamed, and signals wait until all
    of them are written, so an interruption at any moment leaves complete files in place.
    """

    def __init__(self, run, state, interrupts):
        super().__init__()
        self.run, self.state, self.interrupts = run, state, interrupts
        self.epoch_started = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        logs["seconds"] = time.time() - self.epoch_started
        self.state["history"].append(logs)
        self.state["epochs_done"] = epoch + 1
        self.state["train_seconds"] = self.state.get("train_seconds", 0.0) + logs["seconds"]
        with self.interrupts.shielded():
            save_model_atomic(self.model, self.run.last)
            if logs.get("val_accuracy", -1) > self.state.get("best_val_accuracy", -1):
                self.state["best_val_accuracy"] = logs["val_accuracy"]
                self.state["best_epoch"] = epoch + 1
                save_model_atomic(self.model, self.run.best, include_optimizer=False)
            self.run.write(self.state)


def train(config, resume=False, restart=False, verbose=1):
    """Train, evaluate on test/, and write the model, its metrics JSON and its training-curve PNG.

    verbose follows Keras: 1 progress bars (a terminal), 2 one line per epoch (notebooks, log
    files), 0 nothing but the summaries.
    """
    run = RunState(config.resolved_run_dir())
    if resume:
        if not run.exists():
            raise UserError(f"nothing to resume in {run.dir}; start a new run without --resume")
        state = run.read()
        saved = state["config"]
        # The schedule, the split and the recipe belong to the run, so a resumed run keeps them
        # (a field missing from an older run's log keeps the value that run was made with: the default).
        ignored = []
        for name in RECIPE_FIELDS:
            default = getattr(TrainConfig, name)
            value = type(default)(saved.get(name, default))
            asked = getattr(config, name)
            if asked != default and asked != value:
                ignored.append(f"--{name.replace('_', '-')} {asked} (the run has {value})")
            setattr(config, name, value)
        if ignored:
            print(f"warning: a resumed run keeps the recipe it started with; ignoring {', '.join(ignored)}. "
                  "Use --restart (or another --run-dir) to train with a new recipe", file=sys.stderr)
    elif run.exists() and not restart:
        done = run.read().get("epochs_done", 0)
        raise UserError(
            f"{run.dir} already holds a run ({done} epochs done); continue it with --resume, or pass "
            "--restart to discard it and start over")
    else:
        state = {"config": asdict(config), "epochs_done": 0, "history": [], "train_seconds": 0.0}

    data.check_dataset(config.data)
    if restart:
        for stale in (run.last, run.best, run.state_file):
            stale.unlink(missing_ok=True)
    # Find out now, not after hours of training, that the results cannot be written.
    ensure_folder(Path(config.output).parent, "--output")
    ensure_folder(run.dir, "--run-dir")
    print(f"Reading {Path(config.data) / 'train'} ...")
    images, labels, skipped = data.load_split(Path(config.data) / "train", verbose=verbose == 1)
    report_skipped(skipped)
    train_idx, val_idx = data.stratified_split(labels, config.val_split, config.seed)
    print(f"{len(train_idx)} training and {len(val_idx)} validation images (seed {config.seed}); "
          "per class: " + ", ".join(f"{n} {c}" for n, c in zip(CLASS_NAMES, data.class_counts(labels))))

    x_train = images[train_idx, :, :, None].astype("float32")
    y_train = keras.utils.to_categorical(labels[train_idx], NUM_CLASSES)
    x_val = images[val_idx, :, :, None].astype("float32")
    y_val = keras.utils.to_categorical(labels[val_idx], NUM_CLASSES)
    weights = class_sample_weights(labels[train_idx], config.class_weight_power)
    steps_per_epoch = int(np.ceil(len(x_train) / config.batch_size))
    state["train_images"] = int(len(x_train))

    keras.utils.set_random_seed(config.seed + state["epochs_done"])
    if resume:
        model = load_model(run.last, compile=True)
        print(f"Resuming {run.dir} after epoch {state['epochs_done']} of {config.epochs}")
    else:
        model = build_model(base_width=config.base_width)
        compile_model(model, config, steps_per_epoch)
        run.write(state)

    # Seeded by the epoch it starts at, so a resumed run does not replay the augmentations of epoch 1.
    augmentation_seed = config.seed + state["epochs_done"]
    batches = make_augmenter(config.random_erasing, seed=augmentation_seed).flow(
        x_train, y_train, sample_weight=weights, batch_size=config.batch_size, seed=augmentation_seed)
    interrupts = DeferredInterrupts()
    try:
        with interrupts.installed():
            if state["epochs_done"] < config.epochs:
                model.fit(batches, validation_data=(x_val, y_val), epochs=config.epochs,
                          initial_epoch=state["epochs_done"], callbacks=[EpochCheckpoint(run, state, interrupts)],
                          verbose=verbose)
    except KeyboardInterrupt:
        state = run.read() if run.state_file.is_file() else state
        if not state["epochs_done"]:
            raise UserError("training interrupted before its first epoch finished; nothing to keep, "
                            "start again with --restart", exit_code=130) from None
        raise UserError(
            f"training interrupted after {state['epochs_done']} finished epoch(s); the best model so "
            f"far is {run.best} and 'python train.py --resume' (with the same --output/--run-dir) "
            "continues from the last checkpoint", exit_code=130) from None

    return finish(config, run, state, verbose)


def report_skipped(skipped):
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        print(f"warning: skipped {len(skipped)} file(s) that are not readable images: {shown}", file=sys.stderr)


def finish(config, run, state, verbose=1):
    """Publish the best model to --output, score it on test/, and write the metrics and curves."""
    if not run.best.is_file():
        raise UserError(f"{run.best} is missing; the run has no finished epoch to publish")
    output = Path(config.output)
    best = load_model(run.best)
    save_model_atomic(best, output, include_optimizer=False)

    print(f"Scoring the best epoch ({state.get('best_epoch')}) on {Path(config.data) / 'test'} ...")
    test_images, test_labels, skipped = data.load_split(Path(config.data) / "test", verbose=verbose == 1)
    report_skipped(skipped)
    report = evaluation.evaluate(best, test_images, test_labels)
    print(evaluation.format_report(report, title="test"))

    history = state["history"]
    metrics = {
        "model": output.name,
        "split": "test",
        "data": str(config.data),
        "test": report,
        "best_epoch": state.get("best_epoch"),
        "best_val_accuracy": state.get("best_val_accuracy"),
        "epochs": state["epochs_done"],
        "train_seconds": round(state.get("train_seconds", 0.0), 1),
        "train_images_per_second": round(
            state["epochs_done"] * state.get("train_images", 0) / max(state.get("train_seconds", 0.0), 1e-9), 1),
        "parameters": int(best.count_params()),
        "config": asdict(config),
    }
    metrics_path = output.with_suffix(".metrics.json")
    tmp = metrics_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, metrics_path)
    curves_path = output.with_suffix(".history.png")
    plot_history(history, curves_path)
    print(f"Wrote {output}, {metrics_path.name} and {curves_path.name}")
    return metrics


def plot_history(history, path):
    """Loss and accuracy per epoch, training vs. validation, as a PNG."""
    # A bare Figure needs no GUI backend and leaves pyplot's (a notebook's inline one) alone.
    from matplotlib.figure import Figure

    epochs = np.arange(1, len(history) + 1)
    figure = Figure(figsize=(11, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, key, label in ((loss_axes, "loss", "loss"), (accuracy_axes, "accuracy", "accuracy")):
        axes.plot(epochs, [h.get(key, np.nan) for h in history], label=f"training {label}")
        axes.plot(epochs, [h.get(f"val_{key}", np.nan) for h in history], label=f"validation {label}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    accuracy_axes.set_title("training accuracy is on augmented faces")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def config_from_args(args):
    """A TrainConfig from argparse results, taking only the fields TrainConfig knows."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
