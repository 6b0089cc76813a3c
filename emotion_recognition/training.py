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
from .model import (BASE_WIDTH, CROP_SIZE, DENSE_DROPOUT, DENSE_UNITS, STAGE_DROPOUT, average_models, build_model,
                    load_model, save_model_atomic)
from .runs import DeferredInterrupts, EpochCheckpoint, RunFiles, RunProgress, RunState, StopWhenInterrupted

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
    members: int = 2               # models trained alike from seeds seed, seed + 1, ...; the published
    #                                model averages their probabilities (README, "Two models averaged")

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
                 "dense_dropout", "stage_dropout", "random_erasing", "members")
# Recipe fields that runs made before the field existed did not have the default of: their value then.
EARLIER_VALUES = {"members": 1}
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

    A field missing from an older run's log keeps the value that run was made with: EARLIER_VALUES',
    or else the default.
    Options the caller set that the run overrides are named in a warning; `config` is not changed.
    """
    recipe, ignored = {}, []
    for name in RECIPE_FIELDS:
        default = getattr(TrainConfig, name)
        value = type(default)(saved.get(name, EARLIER_VALUES.get(name, default)))
        asked = getattr(config, name)
        if asked != default and asked != value:
            ignored.append(f"{name} {asked} (the run has {value})")
        recipe[name] = value
    if ignored:
        print(f"warning: a resumed run keeps the recipe it started with; ignoring {', '.join(ignored)}. "
              "Restart the run, or use another run folder, to train with a new recipe", file=sys.stderr)
    return dataclasses.replace(config, **recipe)


def train(config, resume=False, restart=False, verbose=1, devices=None, mixed_precision="auto"):
    """Train config.members models, one run each, then publish their average to config.output and
    score it (publish_and_score).

    verbose follows Keras: 1 progress bars (a terminal), 2 one line per epoch (notebooks, log
    files), 0 nothing but the summaries. devices: how many to train on (devices.choose_devices; None
    is every GPU, else the CPU); config.batch_size is per device. mixed_precision: "auto" (on for
    GPUs), "on" or "off"; a resumed run keeps the precision it started with. Returns the metrics.
    """
    # Devices first: splitting the CPU into logical devices must come before TensorFlow runs anything.
    hardware = choose_devices(devices)
    if config.members < 1:
        raise UserError(f"members must be 1 or more, not {config.members}")
    if resume:
        config = resumed_config(config, saved_recipe(config.resolved_run_dir()))
    runs = member_runs(config)
    if not resume and not restart:
        for files in runs:
            if files.exists():
                raise UserError(f"{files.dir} already holds a run ({files.read().epochs_done} epochs done)",
                                reason="run-exists")

    data.check_dataset(config.data)
    if restart:
        for files in runs:
            files.discard()
    # Find out now, not after hours of training, that the results cannot be written.
    ensure_folder(Path(config.output).parent, "output folder")
    print(f"Reading {Path(config.data) / 'train'} ...")
    images, labels, skipped = data.load_split(Path(config.data) / "train", verbose=verbose == 1)
    data.report_skipped(skipped)
    train_idx, val_idx = data.stratified_split(labels, config.val_split, data.VALIDATION_SEED)
    print(f"{len(train_idx)} training and {len(val_idx)} validation images; "
          "per class: " + ", ".join(f"{n} {c}" for n, c in zip(CLASS_NAMES, data.class_counts(labels))))
    # Keras cannot validate a batch that splits unevenly between devices (an AddN shape error), so
    # several devices drop the last (at most devices - 1) validation faces; one device keeps all.
    val_idx = val_idx[:len(val_idx) - len(val_idx) % hardware.count]
    faces = {"train": (images[train_idx], labels[train_idx]), "validation": (images[val_idx], labels[val_idx])}

    states = []
    for number, files in enumerate(runs, start=1):
        if len(runs) > 1:
            print(f"Model {number} of {len(runs)} (seed {member_config(config, number).seed}), in {files.dir}")
        states.append(train_run(member_config(config, number), files, faces, hardware, mixed_precision, verbose,
                                resume=resume and files.exists(), first=number == 1,
                                label=f" of model {number}/{len(runs)}" if len(runs) > 1 else "",
                                epochs_after=(len(runs) - number) * config.epochs))
    return publish_and_score(config, runs, states, faces["validation"], verbose)


def member_config(config, number):
    """The recipe of the number-th model of a config (from 1): the same, but with a seed of its own."""
    return dataclasses.replace(config, seed=config.seed + number - 1)


def member_runs(config):
    """The run folders of a config's models: the run folder itself for one, member-1/, member-2/, ...
    inside it for several."""
    run_dir = config.resolved_run_dir()
    if config.members == 1:
        return [RunFiles(run_dir)]
    return [RunFiles(run_dir / f"member-{number}") for number in range(1, config.members + 1)]


def saved_recipe(run_dir):
    """The recipe a run folder was started with (its first model's, for several), for resuming it."""
    for files in (RunFiles(run_dir), RunFiles(Path(run_dir) / "member-1")):
        if files.exists():
            return files.read().config
    raise UserError(f"nothing to resume in {run_dir}", reason="nothing-to-resume")


def train_run(config, files, faces, hardware, mixed_precision, verbose, resume, first=True, label="",
              epochs_after=0):
    """Train one model in its run folder, from its first epoch or where it stopped; returns its RunState.

    faces: {"train": (images, labels), "validation": (images, labels)}, uint8 faces (n, 48, 48).
    first: whether it is the first model of the run (an interruption before its first epoch then
    leaves nothing to keep). label and epochs_after: for the line after each epoch (RunProgress),
    which model this is and how many epochs the models after it will train.
    """
    state = files.read() if resume else RunState(config=asdict(config))
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
    ensure_folder(files.dir, "run folder")

    x_train, train_labels = faces["train"]
    val_images, val_labels = faces["validation"]
    y_train = keras.utils.to_categorical(train_labels, NUM_CLASSES)
    x_val = val_images[..., None].astype("float32")
    y_val = keras.utils.to_categorical(val_labels, NUM_CLASSES)
    weights = class_sample_weights(train_labels, config.class_weight_power)
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
                                     EpochCheckpoint(files, state, interrupts, published_form, plot_history)]
                          + ([RunProgress(state, label, epochs_after)] if verbose else []),
                          verbose=verbose)
    except KeyboardInterrupt:
        state = files.read() if files.state_file.is_file() else state
        if first and not state.epochs_done:
            raise UserError("training interrupted before its first epoch finished; nothing to keep",
                            exit_code=130, reason="interrupted-early") from None
        kept = f"the best model so far is {files.best}" if state.epochs_done else "the models before it are kept"
        raise UserError(f"training of {files.dir} interrupted after {state.epochs_done} finished epoch(s); {kept}, "
                        "and resuming the run continues from the last checkpoint",
                        exit_code=130, reason="interrupted") from None
    return state


def publish_and_score(config, runs, states, validation, verbose=1):
    """Average the runs' best epochs (average_models; one run's is published as it is) into
    config.output, score it on the validation slice and once on test/, and write its metrics JSON and
    training-curve PNG beside it. validation: (images, labels). Returns the metrics."""
    for files in runs:
        if not files.best.is_file():
            raise UserError(f"{files.best} is missing; the run has no finished epoch to publish")
    output = Path(config.output)
    published = average_models([load_model(files.best) for files in runs])
    save_model_atomic(published, output, include_optimizer=False)

    val_images, val_labels = validation
    val_probabilities = evaluation.predict_probabilities(published, val_images)
    val_accuracy = float((val_probabilities.argmax(axis=1) == val_labels).mean())
    what = (f"the best epoch ({states[0].best_epoch})" if len(runs) == 1
            else f"the average of {len(runs)} models (best epochs {', '.join(str(s.best_epoch) for s in states)})")
    print(f"Validation accuracy of {what}: {val_accuracy:.2%}")
    print(f"Scoring {what} on {Path(config.data) / 'test'} ...")
    test_images, test_labels, skipped = data.load_split(Path(config.data) / "test", verbose=verbose == 1)
    data.report_skipped(skipped)
    report = evaluation.evaluate(published, test_images, test_labels, verbose=verbose == 1)
    print(evaluation.format_report(report, title="test"))

    train_seconds = sum(state.train_seconds for state in states)
    metrics = {
        "model": output.name,
        "split": "test",
        "data": str(config.data),
        "test": report,
        "val_accuracy": val_accuracy,  # of the published model, on the validation slice that chose its epochs
        "epochs": config.epochs,       # per model
        "train_seconds": round(train_seconds, 1),
        "train_images_per_second": round(sum(s.epochs_done * s.train_images for s in states) / train_seconds, 1)
                                   if train_seconds else 0.0,
        # None for a run folder written before state.json counted its sessions.
        "times_resumed": (sum(len(s.resumed_after) for s in states) if all(s.session_starts for s in states)
                          else None),
        "members": [{"seed": s.config.get("seed"), "epochs": s.epochs_done, "best_epoch": s.best_epoch,
                     "best_val_accuracy": s.best_val_accuracy, "train_seconds": round(s.train_seconds, 1),
                     "times_resumed": len(s.resumed_after) if s.session_starts else None} for s in states],
        "devices": states[-1].devices,
        "backend": states[-1].backend,
        "mixed_precision": states[-1].mixed_precision,
        "parameters": int(published.count_params()),
        "config": asdict(config),
    }
    metrics_path = output.with_suffix(".metrics.json")
    write_json_atomic(metrics_path, metrics)
    curves_path = output.with_suffix(".history.png")
    save_figure(plot_histories([(s.history, s.resumed_after) for s in states]), curves_path)
    print(f"Wrote {output}, {metrics_path.name} and {curves_path.name}")
    return metrics


def plot_history(history, resumed_after=()):
    """Loss and accuracy per epoch, training vs. validation, as a Matplotlib Figure; a dotted line
    marks each epoch after which the run was interrupted and resumed."""
    return plot_histories([(history, resumed_after)])


def plot_histories(runs):
    """plot_history for several models trained alike: runs holds one (history, resumed_after) each;
    each model has a colour of its own, its training curve dashed and its validation curve solid."""
    # A bare Figure needs no GUI backend and leaves pyplot's (a notebook's inline one) alone.
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


def config_from_args(args):
    """A TrainConfig from argparse results, taking only the fields TrainConfig knows."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
