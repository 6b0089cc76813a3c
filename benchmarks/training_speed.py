#!/usr/bin/env python3
"""Where a training step's time goes, and training images/s of the old and the new input pipeline.

    python benchmarks/training_speed.py                  # FER2013 faces if unpacked, else random ones
    python benchmarks/training_speed.py --widths 16 32   # both pipelines at other base widths

Rows (all `model.fit` on the same faces, batch 64, after a warm-up of a few steps), per base width:
- augmentation alone: faces/s of each way of drawing ImageDataGenerator's transforms, no model;
- model alone: the network fed with fixed in-memory tensors, the ceiling for any input pipeline;
- old pipeline: ImageDataGenerator.flow (SciPy warps, shifts) into the 48-px model, as shipped before;
- new pipeline: augmentation.AugmentedFaces (OpenCV warps) into the model with random 40-px crops;
- the same four rows for train.py's defaults (the shipped recipe's width, head and dropout);
- with --xla, that model alone once more, compiled by XLA (jit_compile=True), which Keras leaves off on CPUs.
Each figure is the steady state of one epoch, its first steps left out.
Run it on an otherwise idle machine; a background job halves every figure.
"""

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from emotion_recognition.cli import HelpFormatter
from emotion_recognition.config import DEFAULT_DATA_DIR, NUM_CLASSES
from emotion_recognition.runtime import cpu_description

BATCH_SIZE = 64
WARM_UP_STEPS = 20  # oneDNN picks and caches its kernels during the first steps
SKIPPED_STEPS = 5  # the timed epoch's first steps wait for fit's start-up, not for the model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="FER2013 folder (random faces if absent)")
    parser.add_argument("--images", type=int, default=3200, help="faces per timed epoch")
    parser.add_argument("--widths", type=int, nargs="+", default=[16], help="base widths for both pipelines")
    parser.add_argument("--xla", action="store_true",
                        help="also time train.py's defaults alone compiled by XLA (about a minute more)")
    args = parser.parse_args(argv)
    # The warm-up must not run past the old pipeline's epoch, and a rate needs two steps after the skipped ones.
    fewest = max(WARM_UP_STEPS, SKIPPED_STEPS + 2) * BATCH_SIZE
    if args.images < fewest:
        parser.error(f"--images must be at least {fewest}")
    return args


def sample_faces(args):
    from emotion_recognition import data

    rng = np.random.default_rng(0)
    train_dir = Path(args.data) / "train"
    if train_dir.is_dir():
        faces, labels, _ = data.load_split(train_dir, verbose=False)
        chosen = rng.choice(len(faces), args.images, replace=False)
        return faces[chosen], labels[chosen], f"{args.images} FER2013 training faces"
    return (rng.integers(0, 256, (args.images, 48, 48), dtype=np.uint8), rng.integers(0, NUM_CLASSES, args.images),
            f"{args.images} random faces (no FER2013 at {args.data})")


def images_per_second(model, batches, steps=None):
    """Steady-state training images/s: the steps of one epoch after its first few, so that neither the
    kernels' first calls nor `fit`'s start-up (iterators, worker threads) count."""
    import keras

    model.fit(batches, epochs=1, steps_per_epoch=WARM_UP_STEPS, verbose=0)
    step_ends = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step_ends.append(time.perf_counter())

    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[StepClock()])
    timed = step_ends[SKIPPED_STEPS:]
    return (len(timed) - 1) * BATCH_SIZE / (timed[-1] - timed[0])


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from emotion_recognition.augmentation import AugmentedFaces, image_data_generator, warp_like_image_data_generator
    from emotion_recognition.recipe import CROP_SIZE
    from emotion_recognition.recipe import TrainConfig
    from emotion_recognition.training import compile_model, make_batches, make_model

    faces, labels, source = sample_faces(args)
    one_hot = keras.utils.to_categorical(labels, NUM_CLASSES)
    weights = np.ones(len(faces), dtype="float32")
    steps = len(faces) // BATCH_SIZE
    print(f"{source}, batch {BATCH_SIZE}, {cpu_description()}, TensorFlow {tf.__version__}")
    rows = []

    # Augmentation alone.
    generator = image_data_generator(shift=0.1)
    flow = generator.flow(faces[:, :, :, None].astype("float32"), batch_size=BATCH_SIZE, seed=0)
    started = time.perf_counter()
    for index in range(steps):
        flow[index]
    rows.append(("augmentation alone: ImageDataGenerator.flow (SciPy)", steps * BATCH_SIZE / (time.perf_counter() - started)))
    ours = AugmentedFaces(faces, one_hot, weights, BATCH_SIZE, image_data_generator(), 0.5, seed=0)
    started = time.perf_counter()
    for index in range(steps):
        ours[index]
    rows.append(("augmentation alone: AugmentedFaces (OpenCV)", steps * BATCH_SIZE / (time.perf_counter() - started)))
    params = image_data_generator().get_random_transform((48, 48, 1), seed=0)
    started = time.perf_counter()
    for face in faces:
        warp_like_image_data_generator(face, params)
    rows.append(("  of which the OpenCV warp itself", len(faces) / (time.perf_counter() - started)))

    def fresh(config):
        model = make_model(config)
        compile_model(model, config, steps)
        return model

    # The recipe this benchmark first measured (width 16, no crops, a 256-unit head): every row keeps its
    # head and dropout, so that the rows differ only in what they name.
    old_config = TrainConfig(crop_size=48, base_width=16, dense_units=256, dense_dropout=0.4, stage_dropout=1.0)
    x = faces[:, :, :, None].astype("float32")
    tensors = tf.data.Dataset.from_tensor_slices((x, one_hot, weights)).repeat().batch(BATCH_SIZE).prefetch(2)

    old_flow = tf.keras.preprocessing.image.ImageDataGenerator(
        rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1, horizontal_flip=True,
        fill_mode="nearest").flow(x, one_hot, sample_weight=weights, batch_size=BATCH_SIZE, seed=0)

    def old_and_new(label, config):
        """The old pipeline into the model at 48 px and the new one into it with crops, and each model alone."""
        whole_faces = dataclasses.replace(config, crop_size=48)
        rows.append((f"model alone, 48 px, {label}", images_per_second(fresh(whole_faces), tensors, steps)))
        old = images_per_second(fresh(whole_faces), old_flow)
        rows.append((f"old pipeline: flow() -> 48-px model, {label}", old))
        rows.append((f"model alone, 40-px crops, {label}", images_per_second(fresh(config), tensors, steps)))
        new = images_per_second(fresh(config), make_batches(config, faces, one_hot, weights, 0))
        rows.append((f"new pipeline: AugmentedFaces -> 40-px crops, {label}", new))
        rows.append((f"  new / old, {label}", new / old))

    for width in args.widths:
        old_and_new(f"width {width}", dataclasses.replace(old_config, base_width=width, crop_size=CROP_SIZE))
    # The shipped recipe as train.py runs it: its width, head and dropout.
    shipped = TrainConfig()
    print(f"train.py's defaults: base width {shipped.base_width}, head {shipped.dense_units} units, dropout "
          f"{shipped.dense_dropout}, stage dropout x{shipped.stage_dropout}")
    old_and_new("train.py's defaults", shipped)
    if args.xla:
        model = fresh(shipped)
        model.jit_compile = True  # Keras' "auto" turns XLA on only where there is a GPU
        rows.append(("model alone, 40-px crops, XLA, train.py's defaults", images_per_second(model, tensors, steps)))

    for name, value in rows:
        print(f"{name:68} {value:8.2f}" if value < 10 else f"{name:68} {value:8.0f} images/s")


if __name__ == "__main__":
    main()
