#!/usr/bin/env python3
"""Where a training step's time goes, and training images/s of the old and the new input pipeline.

    python benchmarks/training_speed.py                  # FER2013 faces if unpacked, else random ones
    python benchmarks/training_speed.py --widths 16 32   # the new pipeline at other base widths

Rows (all `model.fit` on the same faces, batch 64, after a warm-up epoch):
- augmentation alone: faces/s of each way of drawing ImageDataGenerator's transforms, no model;
- model alone: the network fed with fixed in-memory tensors, the ceiling for any input pipeline;
- old pipeline: ImageDataGenerator.flow (SciPy warps, shifts) into the 48-px model, as shipped before;
- new pipeline: augmentation.AugmentedFaces (OpenCV warps) into the model with random 40-px crops.
Run it on an otherwise idle machine; a background job halves every figure.
"""

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

from emotion_recognition.cli import HelpFormatter
from emotion_recognition.config import DEFAULT_DATA_DIR, NUM_CLASSES

BATCH_SIZE = 64
WARM_UP_STEPS = 20  # oneDNN picks and caches its kernels during the first steps


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="FER2013 folder (random faces if absent)")
    parser.add_argument("--images", type=int, default=3200, help="faces per timed epoch")
    parser.add_argument("--widths", type=int, nargs="+", default=[16], help="base widths for the new pipeline")
    return parser.parse_args(argv)


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


def images_per_second(model, batches, count, steps=None):
    model.fit(batches, epochs=1, steps_per_epoch=WARM_UP_STEPS, verbose=0)
    started = time.perf_counter()
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
    return count / (time.perf_counter() - started)


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from emotion_recognition.augmentation import AugmentedFaces, image_data_generator, warp_like_image_data_generator
    from emotion_recognition.model import CROP_SIZE
    from emotion_recognition.training import TrainConfig, compile_model, make_batches, make_model

    faces, labels, source = sample_faces(args)
    one_hot = keras.utils.to_categorical(labels, NUM_CLASSES)
    weights = np.ones(len(faces), dtype="float32")
    steps = len(faces) // BATCH_SIZE
    print(f"{source}, batch {BATCH_SIZE}, {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}")
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

    # The model alone, then the old pipeline, at width 16.
    rows.append(("model alone, 48 px, width 16", images_per_second(fresh(old_config), tensors, steps * BATCH_SIZE, steps)))
    old_flow = tf.keras.preprocessing.image.ImageDataGenerator(
        rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1, horizontal_flip=True,
        fill_mode="nearest").flow(x, one_hot, sample_weight=weights, batch_size=BATCH_SIZE, seed=0)
    old = images_per_second(fresh(old_config), old_flow, len(x))
    rows.append(("old pipeline: flow() -> 48-px model, width 16", old))

    for width in args.widths:
        config = dataclasses.replace(old_config, base_width=width, crop_size=CROP_SIZE)
        rows.append((f"model alone, 40-px crops, width {width}",
                     images_per_second(fresh(config), tensors, steps * BATCH_SIZE, steps)))
        new = images_per_second(fresh(config), make_batches(config, faces, one_hot, weights, 0), len(x))
        rows.append((f"new pipeline: AugmentedFaces -> 40-px crops, width {width}", new))
        if width == 16:
            rows.append(("  new / old at width 16", new / old))

    for name, value in rows:
        print(f"{name:58} {value:8.2f}" if value < 10 else f"{name:58} {value:8.0f} images/s")


if __name__ == "__main__":
    main()
