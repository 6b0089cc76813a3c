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
    # TrainConfig's module needs Keras (and so TensorFlow, on Keras' default backend), and so does
    # reading the defaults; the notices TensorFlow prints while it loads are hidden.
    from ..runtime import import_tensorflow

    import_tensorflow()
    from ..devices import MIXED_PRECISION_CHOICES
    from ..training import OPTIMIZERS, TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description="Train the emotion CNN on FER2013 folders (<data>/{train,test}/<emotion>/*.jpg). "
                    "A stratified slice of train/ picks the best epoch; test/ is only scored at the end.",
        formatter_class=HelpFormatter)
    parser.add_argument("--data", default=defaults.data, help="folder holding train/ and test/")
    parser.add_argument("--output", default=defaults.output, help="where the trained .keras model goes")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs in the whole run")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="faces per device per step; several devices make the step's batch that many times larger")
    parser.add_argument("--val-split", type=float, default=defaults.val_split,
                        help="share of train/ held out for choosing the best epoch")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                        help="peak learning rate, after a one-epoch warm-up (cosine schedule)")
    recipe = parser.add_argument_group("recipe", "the defaults made the shipped model; a resumed run keeps its own")
    recipe.add_argument("--seed", type=int, default=defaults.seed,
                        help="draws the initial weights, the batches and their augmentation (the validation slice is fixed)")
    recipe.add_argument("--base-width", type=int, default=defaults.base_width,
                        help="channels of the first conv stage (doubled per stage); wider is slower")
    recipe.add_argument("--crop-size", type=int, default=defaults.crop_size,
                        help="train on random crops of this size, test on the centre one (48 = no crops)")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer,
                        help="sgd is SGD with Nesterov momentum 0.9")
    recipe.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                        help="weight decay, decoupled from the gradient (Keras' weight_decay), for either optimizer")
    recipe.add_argument("--dense-units", type=int, default=defaults.dense_units,
                        help="width of the dense layer before the output")
    recipe.add_argument("--dense-dropout", type=float, default=defaults.dense_dropout,
                        help="dropout rate after the dense layer")
    recipe.add_argument("--stage-dropout", type=float, default=defaults.stage_dropout,
                        help="multiplies the conv stages' dropout (0.05, 0.1, 0.2, 0.3)")
    recipe.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing,
                        help="share of each label spread over all classes (FER2013's labels are noisy)")
    recipe.add_argument("--class-weight-power", type=float, default=defaults.class_weight_power,
                        help="0 = no class weighting, 1 = full inverse class frequency")
    recipe.add_argument("--random-erasing", type=float, default=defaults.random_erasing,
                        help="chance of blanking a random patch of a training face")
    recipe.add_argument("--members", type=int, default=defaults.members,
                        help="models trained one after another from seeds --seed, --seed + 1, ...; the published "
                             "model averages their answers (1 = a single model, in half the time)")
    hardware = parser.add_argument_group("devices")
    hardware.add_argument("--devices", type=int, default=None,
                          help="how many devices to train on (default: every GPU, else the CPU); on a machine "
                               "without GPUs, 2 or more splits the CPU into logical devices (for testing)")
    hardware.add_argument("--mixed-precision", choices=MIXED_PRECISION_CHOICES, default="auto",
                          help="float16 arithmetic (auto: on GPUs only); the published model is float32 either way")
    parser.add_argument("--run-dir", default=None,
                        help="checkpoints and log of this run (default: runs/<output name>/ beside --output, "
                             "or the clone's runs/ for the shipped model)")
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
        from ..training import config_from_args, train

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
