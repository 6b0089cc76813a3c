"""Training: the recipe, the run from its first epoch (or where it stopped) to the published model.

The command-line front end is emotion_recognition/cli/train.py; everything it does is here, so a
notebook can do it too. How a run's files survive interruption is runs.py.
"""

import dataclasses
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import keras
import numpy as np

from . import data, evaluation
from .augmentation import AugmentedFaces, image_data_generator
from .devices import choose_devices, set_precision, uses_mixed_precision
from .config import (CLASS_NAMES, DEFAULT_DATA_DIR, DEFAULT_MODEL_PATH, DEFAULT_RUNS_DIR, MODELS_DIR,
                     NUM_CLASSES)
from .errors import UserError, ensure_folder
from .files import save_figure, write_json_atomic
from .model import (BASE_WIDTH, CROP_SIZE, DENSE_DROPOUT, DENSE_UNITS, STAGE_DROPOUT, build_model, load_model,
                    save_model_atomic)
from .runs import DeferredInterrupts, EpochCheckpoint, RunFiles, RunState, StopWhenInterrupted

OPTIMIZERS = ("sgd", "adamw")


@dataclass
class TrainConfig:
    """Everything that defines a training run. The defaults reproduce the shipped model."""

    data: str = str(DEFAULT_DATA_DIR)
    output: str = str(DEFAULT_MODEL_PATH)
    run_dir: str = ""              # checkpoints and logs; default: runs/<output name>/ (resolved_run_dir)
    epochs: int = 150              # the shipped run (2.3 h on a 2-core AVX-512 CPU); 63 gave 1.5 points less
    batch_size: int = 64           # small batches regularise; larger ones gained no speed on 2 cores
    val_split: float = 0.1         # a stratified slice of train/ for model selection; test/ stays unseen
    seed: int = 1337
    optimizer: str = "adamw"       # or "sgd": SGD with Nesterov momentum 0.9, as the published recipes
    learning_rate: float = 2e-3    # peak rate, reached after one warm-up epoch, then cosine to 0
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1   # FER2013 labels are noisy; smoothing keeps the model from trusting them
    class_weight_power: float = 0.5  # weight = (largest class / class) ** power; 0.5 rescues disgust
    #                                  (16x rarer than happy) without wrecking the common classes
    base_width: int = BASE_WIDTH   # channels of the first conv stage; see model.py for the speed trade-off
    crop_size: int = CROP_SIZE     # random crops of this size in training, the centre one after; 48 = none
    dense_units: int = DENSE_UNITS
    dense_dropout: float = DENSE_DROPOUT
    stage_dropout: float = 0.5     # scales the conv stages' dropout (model.STAGE_DROPOUT): half of it let
    #                                width 32 fit faster, and the wide head has dropout enough
    random_erasing: float = 0.5    # chance that a training face gets a random patch blanked out

    def resolved_run_dir(self):
        """run_dir, or runs/<output name>/ beside the output (the clone's runs/ for the shipped model)."""
        if self.run_dir:
            return Path(self.run_dir)
        output = Path(self.output)
        runs = DEFAULT_RUNS_DIR if output.parent.resolve() == MODELS_DIR else output.parent / "runs"
        return runs / output.stem


# What a resumed run takes from its own log rather than from the command line.
RECIPE_FIELDS = ("epochs", "batch_size", "val_split", "seed", "optimizer", "learning_rate", "weight_decay",
                 "label_smoothing", "class_weight_power", "base_width", "crop_size", "dense_units",
                 "dense_dropout", "stage_dropout", "random_erasing")
# Augmentation strength: ImageDataGenerator's rotation (degrees) and zoom (share). Shifts come from
# the model's random crops; a crop-free recipe (crop_size 48) gets the same share of shifts instead.
ROTATION_DEGREES = 10
ZOOM_RANGE = 0.1
SHIFT_RANGE_WITHOUT_CROPS = 0.1
SGD_MOMENTUM = 0.9


def make_model(config, published=False):
    """The network a config describes; published=True gives the form that is saved for inference."""
    return build_model(base_width=config.base_width, crop_size=config.crop_size,
                       stage_dropout=tuple(config.stage_dropout * d for d in STAGE_DROPOUT),
                       dense_units=config.dense_units, dense_dropout=config.dense_dropout,
                       random_crops=not published)


def make_batches(config, faces, labels_one_hot, weights, first_epoch, batch_size=None, devices=1):
    """Augmented training batches: ImageDataGenerator's transforms plus random erasing.

    batch_size is the global batch (all devices together); config.batch_size when not given.
    """
    shift = SHIFT_RANGE_WITHOUT_CROPS if config.crop_size >= faces.shape[1] else 0.0
    generator = image_data_generator(rotation=ROTATION_DEGREES, zoom=ZOOM_RANGE, shift=shift)
    return AugmentedFaces(faces, labels_one_hot, weights, batch_size or config.batch_size, generator,
                          erase_probability=config.random_erasing, seed=config.seed, first_epoch=first_epoch,
                          batch_multiple=devices)


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
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=SGD_MOMENTUM, nesterov=True,
                                         weight_decay=config.weight_decay)
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    else:
        raise UserError(f"unknown optimizer {config.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def resumed_config(config, saved):
    """The config a resumed run trains with: the caller's, with the recipe the run was started with.

    A field missing from an older run's log keeps the value that run was made with: the default.
    Options the caller set that the run overrides are named in a warning; `config` is not changed.
    """
    recipe, ignored = {}, []
    for name in RECIPE_FIELDS:
        default = getattr(TrainConfig, name)
        value = type(default)(saved.get(name, default))
        asked = getattr(config, name)
        if asked != default and asked != value:
            ignored.append(f"{name} {asked} (the run has {value})")
        recipe[name] = value
    if ignored:
        print(f"warning: a resumed run keeps the recipe it started with; ignoring {', '.join(ignored)}. "
              "Restart the run, or use another run folder, to train with a new recipe", file=sys.stderr)
    return dataclasses.replace(config, **recipe)


def train(config, resume=False, restart=False, verbose=1, devices=None, mixed_precision="auto"):
    """Train, then publish the best epoch to config.output and score it (publish_and_score).

    verbose follows Keras: 1 progress bars (a terminal), 2 one line per epoch (notebooks, log
    files), 0 nothing but the summaries. devices: how many to train on (devices.choose_devices; None
    is every GPU, else the CPU); config.batch_size is per device. mixed_precision: "auto" (on for
    GPUs), "on" or "off"; a resumed run keeps the precision it started with. Returns the metrics.
    """
    # Devices first: splitting the CPU into logical devices must come before TensorFlow runs anything.
    hardware = choose_devices(devices)
    files = RunFiles(config.resolved_run_dir())
    if resume:
        if not files.exists():
            raise UserError(f"nothing to resume in {files.dir}", reason="nothing-to-resume")
        state = files.read()
        config = resumed_config(config, state.config)
    elif files.exists() and not restart:
        raise UserError(f"{files.dir} already holds a run ({files.read().epochs_done} epochs done)",
                        reason="run-exists")
    else:
        state = RunState(config=asdict(config))

    mixed = uses_mixed_precision(mixed_precision, hardware)
    if state.mixed_precision is not None and state.mixed_precision != mixed:
        if mixed_precision != "auto":
            print(f"warning: a resumed run keeps its precision; ignoring mixed precision {mixed_precision!r}",
                  file=sys.stderr)
        mixed = state.mixed_precision
    state.mixed_precision = mixed
    # The global batch belongs to the run (its schedule counts steps of it); devices share it out.
    if state.global_batch is None:
        state.global_batch = config.batch_size * hardware.count
    global_batch = state.global_batch
    if global_batch % hardware.count:
        raise UserError(f"this run trains on batches of {global_batch} faces, which {hardware.count} devices "
                        "cannot share evenly; resume it on a number of devices that divides it")
    state.devices = list(hardware.names)
    state.backend = keras.backend.backend()

    data.check_dataset(config.data)
    if restart:
        files.discard()
    # Find out now, not after hours of training, that the results cannot be written.
    ensure_folder(Path(config.output).parent, "output folder")
    ensure_folder(files.dir, "run folder")
    print(f"Reading {Path(config.data) / 'train'} ...")
    images, labels, skipped = data.load_split(Path(config.data) / "train", verbose=verbose == 1)
    data.report_skipped(skipped)
    train_idx, val_idx = data.stratified_split(labels, config.val_split, data.VALIDATION_SEED)
    print(f"{len(train_idx)} training and {len(val_idx)} validation images; "
          "per class: " + ", ".join(f"{n} {c}" for n, c in zip(CLASS_NAMES, data.class_counts(labels))))

    x_train = images[train_idx]
    y_train = keras.utils.to_categorical(labels[train_idx], NUM_CLASSES)
    # Keras cannot validate a batch that splits unevenly between devices (an AddN shape error), so
    # several devices drop the last (at most devices - 1) validation faces; one device keeps all.
    val_idx = val_idx[:len(val_idx) - len(val_idx) % hardware.count]
    x_val = images[val_idx, :, :, None].astype("float32")
    y_val = keras.utils.to_categorical(labels[val_idx], NUM_CLASSES)
    weights = class_sample_weights(labels[train_idx], config.class_weight_power)
    steps_per_epoch = int(np.ceil(len(x_train) / global_batch))
    state.train_images = int(len(x_train))
    print(f"Training on {hardware.describe()}: {global_batch // hardware.count} faces per device, "
          f"{global_batch} per step" + (", mixed precision (float16)" if mixed else ""))

    keras.utils.set_random_seed(config.seed + state.epochs_done)
    published_form = make_model(config, published=True)  # built before the policy changes: float32
    set_precision(mixed)
    try:
        with hardware.strategy.scope():
            if resume:
                model = load_model(files.last, compile=True)
                print(f"Resuming {files.dir} after epoch {state.epochs_done} of {config.epochs}")
            else:
                model = make_model(config)
                compile_model(model, config, steps_per_epoch)
    finally:
        set_precision(False)  # the policy is global; leave it as found for the caller
    if state.epochs_done < config.epochs:
        state.session_starts.append(state.epochs_done)
    files.write(state)

    # Seeded by the epoch it starts at, so a resumed run continues the stream rather than replaying it.
    batches = make_batches(config, x_train, y_train, weights, first_epoch=state.epochs_done,
                           batch_size=global_batch, devices=hardware.count)
    interrupts = DeferredInterrupts()
    try:
        with interrupts.installed():
            if state.epochs_done < config.epochs:
                model.fit(batches, validation_data=(x_val, y_val), validation_batch_size=global_batch,
                          epochs=config.epochs, initial_epoch=state.epochs_done,
                          callbacks=[StopWhenInterrupted(interrupts),
                                     EpochCheckpoint(files, state, interrupts, published_form, plot_history)],
                          verbose=verbose)
    except KeyboardInterrupt:
        state = files.read() if files.state_file.is_file() else state
        if not state.epochs_done:
            raise UserError("training interrupted before its first epoch finished; nothing to keep",
                            exit_code=130, reason="interrupted-early") from None
        raise UserError(f"training interrupted after {state.epochs_done} finished epoch(s); the best model so "
                        f"far is {files.best}, and resuming the run continues from the last checkpoint",
                        exit_code=130, reason="interrupted") from None

    return publish_and_score(config, files, state, verbose)


def publish_and_score(config, files, state, verbose=1):
    """Copy the run's best epoch to config.output, score it once on test/, and write its metrics
    JSON and training-curve PNG beside it. Returns the metrics."""
    if not files.best.is_file():
        raise UserError(f"{files.best} is missing; the run has no finished epoch to publish")
    output = Path(config.output)
    best = load_model(files.best)
    save_model_atomic(best, output, include_optimizer=False)

    print(f"Scoring the best epoch ({state.best_epoch}) on {Path(config.data) / 'test'} ...")
    test_images, test_labels, skipped = data.load_split(Path(config.data) / "test", verbose=verbose == 1)
    data.report_skipped(skipped)
    report = evaluation.evaluate(best, test_images, test_labels, verbose=verbose == 1)
    print(evaluation.format_report(report, title="test"))

    metrics = {
        "model": output.name,
        "split": "test",
        "data": str(config.data),
        "test": report,
        "best_epoch": state.best_epoch,
        "best_val_accuracy": state.best_val_accuracy,
        "epochs": state.epochs_done,
        "train_seconds": round(state.train_seconds, 1),
        "train_images_per_second": round(state.images_per_second, 1),
        # None for a run folder written before state.json counted its sessions.
        "times_resumed": len(state.resumed_after) if state.session_starts else None,
        "devices": state.devices,
        "backend": state.backend,
        "mixed_precision": state.mixed_precision,
        "parameters": int(best.count_params()),
        "config": asdict(config),
    }
    metrics_path = output.with_suffix(".metrics.json")
    write_json_atomic(metrics_path, metrics)
    curves_path = output.with_suffix(".history.png")
    save_figure(plot_history(state.history, resumed_after=state.resumed_after), curves_path)
    print(f"Wrote {output}, {metrics_path.name} and {curves_path.name}")
    return metrics


def plot_history(history, resumed_after=()):
    """Loss and accuracy per epoch, training vs. validation, as a Matplotlib Figure; a dotted line
    marks each epoch after which the run was interrupted and resumed."""
    # A bare Figure needs no GUI backend and leaves pyplot's (a notebook's inline one) alone.
    from matplotlib.figure import Figure

    epochs = np.arange(1, len(history) + 1)
    figure = Figure(figsize=(11, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, key, label in ((loss_axes, "loss", "loss"), (accuracy_axes, "accuracy", "accuracy")):
        axes.plot(epochs, [h.get(key, np.nan) for h in history], label=f"training {label}")
        axes.plot(epochs, [h.get(f"val_{key}", np.nan) for h in history], label=f"validation {label}")
        for n, epoch in enumerate(resumed_after):  # between the last epoch before and the first after
            axes.axvline(epoch + 0.5, color="gray", linestyle=":", label="resumed" if n == 0 else None)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    accuracy_axes.set_title("training accuracy is on augmented faces")
    figure.tight_layout()
    return figure


def config_from_args(args):
    """A TrainConfig from argparse results, taking only the fields TrainConfig knows."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
