#!/usr/bin/env python3
"""Train the emotion CNN on FER2013 and write emotion_detection.keras.

    python train.py                      # the shipped model's recipe, on dataset/FER2013
    python train.py --resume             # continue an interrupted run from its last epoch
    python train.py --data DIR --epochs 5 --output my_model.keras
"""

import argparse
import contextlib
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal
# TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs with AVX-512. On a 2-core AVX2 CPU
# they train this model twice as fast (154 vs 78 images/s, measured side by side). TF_ENABLE_ONEDNN_OPTS=0
# opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


@contextlib.contextmanager
def native_stderr_hidden():
    """Hide what C++ code writes to stderr; TensorFlow's oneDNN notice ignores TF_CPP_MIN_LOG_LEVEL."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with native_stderr_hidden():
    importlib.import_module("tensorflow")  # loaded here only so that its start-up notice stays hidden

from emotion_recognition.devices import MIXED_PRECISION_CHOICES  # noqa: E402
from emotion_recognition.errors import friendly_errors  # noqa: E402
from emotion_recognition.training import OPTIMIZERS, TrainConfig, config_from_args, train  # noqa: E402

DEFAULTS = TrainConfig()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train the emotion CNN on FER2013 folders (<data>/{train,test}/<emotion>/*.jpg). "
                    "A stratified slice of train/ picks the best epoch; test/ is only scored at the end.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=DEFAULTS.data, help="folder holding train/ and test/")
    parser.add_argument("--output", default=DEFAULTS.output, help="where the trained .keras model goes")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="epochs in the whole run")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                        help="faces per device per step; several devices make the step's batch that many times larger")
    parser.add_argument("--val-split", type=float, default=DEFAULTS.val_split,
                        help="share of train/ held out for choosing the best epoch")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate,
                        help="peak learning rate, after a one-epoch warm-up (cosine schedule)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    recipe = parser.add_argument_group("recipe", "the defaults made the shipped model; a resumed run keeps its own")
    recipe.add_argument("--base-width", type=int, default=DEFAULTS.base_width,
                        help="channels of the first conv stage (doubled per stage); wider is slower")
    recipe.add_argument("--crop-size", type=int, default=DEFAULTS.crop_size,
                        help="train on random crops of this size, test on the centre one (48 = no crops)")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS.optimizer,
                        help="sgd is SGD with Nesterov momentum 0.9")
    recipe.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    recipe.add_argument("--dense-units", type=int, default=DEFAULTS.dense_units,
                        help="width of the dense layer before the output")
    recipe.add_argument("--dense-dropout", type=float, default=DEFAULTS.dense_dropout)
    recipe.add_argument("--stage-dropout", type=float, default=DEFAULTS.stage_dropout,
                        help="multiplies the conv stages' dropout (0.05, 0.1, 0.2, 0.3)")
    recipe.add_argument("--label-smoothing", type=float, default=DEFAULTS.label_smoothing)
    recipe.add_argument("--class-weight-power", type=float, default=DEFAULTS.class_weight_power,
                        help="0 = no class weighting, 1 = full inverse class frequency")
    recipe.add_argument("--random-erasing", type=float, default=DEFAULTS.random_erasing,
                        help="chance of blanking a random patch of a training face")
    hardware = parser.add_argument_group("devices")
    hardware.add_argument("--devices", type=int, default=None,
                          help="how many devices to train on (default: every GPU, else the CPU); on a machine "
                               "without GPUs, 2 or more splits the CPU into logical devices (for testing)")
    hardware.add_argument("--mixed-precision", choices=MIXED_PRECISION_CHOICES, default="auto",
                          help="float16 arithmetic (auto: on GPUs only); the published model is float32 either way")
    parser.add_argument("--run-dir", default=None,
                        help="checkpoints and log of this run (default: runs/<output name>/ beside --output)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its last finished epoch")
    resume.add_argument("--restart", action="store_true",
                        help="discard an existing run in --run-dir and start over")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        train(config_from_args(args), resume=args.resume, restart=args.restart, verbose=0 if args.quiet else 1,
              devices=args.devices, mixed_precision=args.mixed_precision)


if __name__ == "__main__":
    main()
