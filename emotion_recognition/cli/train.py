"""Train the emotion CNN on FER2013 and write emotion_detection.keras.

    emotion-train                      # the shipped model's recipe, on dataset/FER2013
    emotion-train --resume             # continue an interrupted run from its last epoch
    emotion-train --data DIR --epochs 5 --output my_model.keras
    emotion-train --members 1          # one model instead of the average of two: half the time

(`python train.py ...` in a clone does the same.)
"""

import argparse
import sys

from . import HelpFormatter, add_standard_options
from ..errors import friendly_errors

ADVICE = {
    "no-dataset": "or pass --data DIR",
    "nothing-to-resume": "start a new run without --resume",
    "run-exists": "continue it with --resume, or pass --restart to discard it and start over",
    "bad-run": "start the run again with --restart",
    "interrupted-early": "start again with --restart",
    "interrupted": "run the same command with --resume (and the same --output/--run-dir) to continue",
}


def parse_args(argv=None):
    # The recipe's module is free of Keras, so --help answers without loading TensorFlow.
    from ..recipe import MIXED_PRECISION_CHOICES, add_config_options

    parser = argparse.ArgumentParser(
        description="Train the emotion CNN on FER2013 folders (<data>/{train,test}/<emotion>/*.jpg). "
                    "A stratified slice of train/ picks the best epoch; test/ is only scored at the end.",
        formatter_class=HelpFormatter)
    recipe = parser.add_argument_group("recipe", "the defaults made the shipped model; a resumed run keeps its own")
    add_config_options(parser, recipe)
    hardware = parser.add_argument_group("devices")
    hardware.add_argument("--devices", type=int, default=None,
                          help="how many devices to train on (default: every GPU, else the CPU); on a machine "
                               "without GPUs, 2 or more splits the CPU into logical devices (for testing)")
    hardware.add_argument("--mixed-precision", choices=MIXED_PRECISION_CHOICES, default="auto",
                          help="float16 arithmetic (auto: on GPUs only); the published model is float32 either way")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its last finished epoch")
    resume.add_argument("--restart", action="store_true",
                        help="discard an existing run in --run-dir and start over")
    parser.add_argument("--quiet", action="store_true",
                        help="nothing per epoch, only the summaries (otherwise a terminal shows progress bars, "
                             "and output to a file or pipe gets one line per epoch)")
    add_standard_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug, ADVICE):
        from ..recipe import config_from_args
        from ..runtime import import_tensorflow

        import_tensorflow()  # before Keras, so that TensorFlow's start-up notices stay hidden
        from ..training import train

        train(config_from_args(args), resume=args.resume, restart=args.restart, verbose=output_verbosity(args.quiet),
              devices=args.devices, mixed_precision=args.mixed_precision)


def output_verbosity(quiet):
    """Keras' verbose for this run: progress bars redrawn in a terminal; in a log file (a run in the
    background) they would pile up as megabytes of escape codes, so one line per epoch instead."""
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


if __name__ == "__main__":
    main()
