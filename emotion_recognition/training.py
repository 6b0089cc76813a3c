"""Training: from a recipe (recipe.py) to the published model, each model's run from its first epoch
(or where it stopped) to its best one.

The command-line front end is emotion_recognition/cli/train.py; everything it does is here, so a
notebook can do it too. How a run's files survive interruption is runs.py.
"""

import dataclasses
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from . import data, evaluation
from .augmentation import AugmentedFaces, image_data_generator
from .devices import choose_devices, set_precision, uses_mixed_precision
from .config import CLASS_NAMES, NUM_CLASSES
from .errors import UserError, ensure_folder
from .files import save_figure, write_json_atomic
from .model import average_models, build_model, load_model, members_of, save_model_atomic, training_form
from .plots import plot_histories, plot_history
from .recipe import (FINAL_AUGMENTATION_KINDS, OPTIMIZERS, ROTATION_DEGREES, SGD_MOMENTUM, SHIFT_RANGE_WITHOUT_CROPS,
                     STAGE_DROPOUT, ZOOM_RANGE, TrainConfig, member_config, resumed_config)
from .runs import DeferredInterrupts, EpochCheckpoint, RunFiles, RunProgress, RunState, StopWhenInterrupted


def make_model(config, published=False):
    """The network a config describes; published=True gives the form that is saved for inference."""
    return build_model(base_width=config.base_width, crop_size=config.crop_size,
                       stage_dropout=tuple(config.stage_dropout * d for d in STAGE_DROPOUT),
                       dense_units=config.dense_units, dense_dropout=config.dense_dropout,
                       random_crops=not published)


def make_batches(config, faces, labels_one_hot, weights, first_epoch, batch_size=None, devices=1, light=False):
    """Augmented training batches: ImageDataGenerator's transforms, random erasing and camera changes (if
    config.camera_change); light=True keeps only the mirror images and the camera changes (and the model's
    own random crops, or shifts without them).

    batch_size is the global batch (all devices together); config.batch_size when not given.
    """
    shift = SHIFT_RANGE_WITHOUT_CROPS if config.crop_size >= faces.shape[1] else 0.0
    generator = image_data_generator(rotation=0.0 if light else ROTATION_DEGREES, zoom=0.0 if light else ZOOM_RANGE,
                                     shift=shift)
    return AugmentedFaces(faces, labels_one_hot, weights, batch_size or config.batch_size, generator,
                          erase_probability=0.0 if light else config.random_erasing, seed=config.seed,
                          first_epoch=first_epoch, batch_multiple=devices, camera_probability=config.camera_change)


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
        saved = saved_recipe(config.resolved_run_dir())
        config = resumed_config(config, saved)
        config = dataclasses.replace(config, from_model=config.from_model or saved.get("from_model", ""))
    starts = models_to_finish(config)
    if starts:
        config = dataclasses.replace(config, members=len(starts))
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
    split = (f"{len(labels)} images, all trained on" if starts
             else f"{len(train_idx)} training and {len(val_idx)} validation images")
    print(f"{split}; per class: " + ", ".join(f"{n} {c}" for n, c in zip(CLASS_NAMES, data.class_counts(labels))))
    # Keras cannot validate a batch that splits unevenly between devices (an AddN shape error), so
    # several devices drop the last (at most devices - 1) validation faces; one device keeps all.
    val_idx = val_idx[:len(val_idx) - len(val_idx) % hardware.count]
    faces = {"train": (images[train_idx], labels[train_idx]), "validation": (images[val_idx], labels[val_idx]),
             "all": (images, labels)}

    setup = RunSetup(faces, hardware, mixed_precision, verbose)
    states = []
    for number, files in enumerate(runs, start=1):
        member = Member(member_config(config, number), files, number, len(runs), resume=resume and files.exists())
        if member.count > 1:
            print(f"Model {number} of {member.count} (seed {member.config.seed}), in {files.dir}")
        if starts:
            state = (files.read() if member.resume
                     else RunState(config=asdict(member.config), started_from=str(config.from_model)))
        else:
            state = train_run(member, setup)
        if config.final_epochs and not (state.final_epochs_done == config.final_epochs and files.final.is_file()):
            state = final_run(member, setup, state, starts[number - 1] if starts else load_model(files.best))
        states.append(state)
    return publish_and_score(config, runs, states, faces["validation"], verbose)


def models_to_finish(config):
    """The models of config.from_model, each to be given only the final epochs; [] when training from
    scratch."""
    if not config.from_model:
        return []
    if not config.final_epochs:
        raise UserError("--from-model gives a model's members only the final epochs; --final-epochs 0 leaves "
                        "nothing to do")
    if Path(config.from_model).resolve() == Path(config.output).resolve():
        raise UserError(f"--from-model {config.from_model} is also the --output: write the result to another "
                        "file, so that the run can be resumed from the original")
    return members_of(load_model(config.from_model))


@dataclass
class RunSetup:
    """What every model of a run trains with: the faces, the devices, and how it reports.

    faces: {"train": (images, labels), "validation": (images, labels)}, uint8 faces (n, 48, 48).
    hardware: devices.choose_devices' answer. mixed_precision and verbose: as train() takes them."""

    faces: dict
    hardware: object
    mixed_precision: str = "auto"
    verbose: int = 1


@dataclass
class Member:
    """One model of a run: its recipe, its run folder, and where it stands among the run's models."""

    config: TrainConfig
    files: RunFiles
    number: int = 1     # from 1
    count: int = 1      # models in the run
    resume: bool = False

    @property
    def first(self):
        """Whether an interruption before its first epoch leaves nothing to keep."""
        return self.number == 1

    @property
    def label(self):
        """Which model this is, for the line after each epoch (RunProgress)."""
        return f" of model {self.number}/{self.count}" if self.count > 1 else ""

    @property
    def epochs_after(self):
        """Epochs the models after this one will train, for the time left (RunProgress)."""
        return (self.count - self.number) * self.config.epochs


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


def train_run(member, setup):
    """Train one model (a Member) in its run folder, from its first epoch or where it stopped, with a
    run's RunSetup; returns its RunState."""
    config, files, resume, hardware = member.config, member.files, member.resume, setup.hardware
    mixed_precision, verbose = setup.mixed_precision, setup.verbose
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

    x_train, train_labels = setup.faces["train"]
    val_images, val_labels = setup.faces["validation"]
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
                          + ([RunProgress(state, member.label, member.epochs_after)] if verbose else []),
                          verbose=verbose)
    except KeyboardInterrupt:
        state = files.read() if files.state_file.is_file() else state
        if member.first and not state.epochs_done:
            raise UserError("training interrupted before its first epoch finished; nothing to keep",
                            exit_code=130, reason="interrupted-early") from None
        kept = f"the best model so far is {files.best}" if state.epochs_done else "the models before it are kept"
        raise UserError(f"training of {files.dir} interrupted after {state.epochs_done} finished epoch(s); {kept}, "
                        "and resuming the run continues from the last checkpoint",
                        exit_code=130, reason="interrupted") from None
    return state


def final_run(member, setup, state, start):
    """The final epochs of one model: `start` (its best epoch, or a --from-model member, published form)
    trains config.final_epochs more epochs on all of train/ (setup.faces["all"]) at
    config.final_learning_rate, and is written to files.final.

    config.final_augmentation "light" or "full" trains once with that augmentation; "both" trains
    once with each, from the same start, and averages the two results' weights (a "model soup": two
    short fine-tunings of one model stay close enough to average; docs/experiments.md). With no faces
    left to choose an epoch by, the last one is kept. The stage is short, so nothing of it is
    checkpointed: an interrupted one is repeated from `start` when the run is resumed. Returns the
    updated RunState.
    """
    config, files, hardware = member.config, member.files, setup.hardware
    final = dataclasses.replace(config, epochs=config.final_epochs, learning_rate=config.final_learning_rate)
    images, labels = setup.faces["all"]
    global_batch = config.batch_size * hardware.count
    kinds = FINAL_AUGMENTATION_KINDS[config.final_augmentation]
    print(f"Final {final.epochs} epoch(s){member.label} on all {len(images)} faces of train/, "
          f"learning rate {final.learning_rate:g}, {' and '.join(kinds)} augmentation"
          + (", the two averaged" if len(kinds) > 1 else ""))
    ensure_folder(files.dir, "run folder")
    interrupts = DeferredInterrupts()
    started, weights, history = time.time(), [], []
    try:
        with interrupts.installed():
            for kind in kinds:
                keras.utils.set_random_seed(config.seed)
                with hardware.strategy.scope():
                    model = training_form(start, seed=config.seed)
                    compile_model(model, final, steps_per_epoch=int(np.ceil(len(images) / global_batch)))
                batches = make_batches(final, images, keras.utils.to_categorical(labels, NUM_CLASSES),
                                       class_sample_weights(labels, config.class_weight_power), first_epoch=0,
                                       batch_size=global_batch, devices=hardware.count, light=kind == "light")
                fitted = model.fit(batches, epochs=final.epochs, callbacks=[StopWhenInterrupted(interrupts)],
                                   verbose=setup.verbose)
                weights.append(model.get_weights())
                history += [{"augmentation": kind, **{key: float(values[epoch]) for key, values in fitted.history.items()}}
                            for epoch in range(final.epochs)]
            with interrupts.shielded():
                # The training form and the published one differ only in their crop layer, which has no weights.
                start.set_weights([np.mean(arrays, axis=0) for arrays in zip(*weights)])
                save_model_atomic(start, files.final, include_optimizer=False)
                state.final_epochs_done = final.epochs
                state.final_seconds = time.time() - started
                state.final_history = history
                state.devices = state.devices or list(hardware.names)
                state.backend = state.backend or keras.backend.backend()
                state.train_images = state.train_images or int(len(images))
                files.write(state)
    except KeyboardInterrupt:
        raise UserError(f"training of {files.dir} interrupted during its final epochs; what came before is kept, "
                        "and resuming the run repeats them", exit_code=130, reason="interrupted") from None
    return state


def publish_and_score(config, runs, states, validation, verbose=1):
    """Average the runs' best epochs (average_models; one run's is published as it is) into
    config.output, score it on the validation slice and once on test/, and write its metrics JSON and
    training-curve PNG beside it. validation: (images, labels). Returns the metrics."""
    sources = [files.final if config.final_epochs else files.best for files in runs]
    for source in sources:
        if not source.is_file():
            raise UserError(f"{source} is missing; the run has no finished epoch to publish")
    output = Path(config.output)
    published = average_models([load_model(source) for source in sources])
    save_model_atomic(published, output, include_optimizer=False)

    if config.from_model:
        what = f"the {len(runs)} model(s) of {config.from_model}"
    elif len(runs) == 1:
        what = f"the best epoch ({states[0].best_epoch})"
    else:
        what = f"the average of {len(runs)} models (best epochs {', '.join(str(s.best_epoch) for s in states)})"
    if config.final_epochs:
        what += f" after {config.final_epochs} final epochs on all of train/"
        # The final epochs trained on the validation slice, so it can no longer judge the result.
        val_accuracy = None
        print(f"No validation accuracy for {what}: they trained on the validation slice")
    else:
        val_images, val_labels = validation
        val_probabilities = evaluation.predict_probabilities(published, val_images)
        val_accuracy = float((val_probabilities.argmax(axis=1) == val_labels).mean())
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
        "final_epochs": config.final_epochs,
        "from_model": config.from_model or None,
        "train_seconds": round(train_seconds, 1),
        "final_seconds": round(sum(state.final_seconds for state in states), 1),
        "train_images_per_second": round(sum(s.epochs_done * s.train_images for s in states) / train_seconds, 1)
                                   if train_seconds else 0.0,
        # None for a run folder written before state.json counted its sessions.
        "times_resumed": (sum(len(s.resumed_after) for s in states) if all(s.session_starts for s in states)
                          else None),
        "members": [{"seed": s.config.get("seed"), "epochs": s.epochs_done, "best_epoch": s.best_epoch,
                     "final_epochs": s.final_epochs_done, "final_history": s.final_history,
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
    if any(state.history for state in states):
        # The curves of the epochs that chose each model; the final epochs' figures are in the metrics.
        save_figure(plot_histories([(s.history, s.resumed_after) for s in states]), curves_path)
    else:  # --from-model: no epochs but the final ones, which the metrics list
        print(f"No curves to draw: only final epochs were trained (their figures are in {metrics_path.name})")
        curves_path = None
    print(f"Wrote {output}, {metrics_path.name}" + (f" and {curves_path.name}" if curves_path else ""))
    return metrics
