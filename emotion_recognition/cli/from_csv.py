"""Make the image folders train.py and evaluate.py read from FER2013's original CSV.

    emotion-from-csv fer2013.csv                      # into dataset/FER2013: train/, test/, private_test/
    emotion-from-csv icml_face_data.csv --output DIR  # Kaggle's copy of the same file

(`python -m emotion_recognition.cli.from_csv ...` in a clone does the same.)
"""

import argparse
import sys
from pathlib import Path

from . import HelpFormatter, add_standard_options
from ..config import DEFAULT_DATA_DIR
from ..errors import friendly_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write the faces of FER2013's CSV (columns emotion, pixels and Usage) as 48x48 PNG files, "
                    "one folder per emotion: Training rows in OUTPUT/train, PublicTest in OUTPUT/test, PrivateTest "
                    "in OUTPUT/private_test (the held-out split, for evaluate.py). A split folder that exists is "
                    "never written into, and a bad row leaves nothing behind.",
        formatter_class=HelpFormatter)
    parser.add_argument("csv", help="fer2013.csv (or Kaggle's icml_face_data.csv; a CSV without Usage goes to train/)")
    parser.add_argument("--output", default=str(DEFAULT_DATA_DIR), help="the dataset folder to write the splits into")
    add_standard_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        from ..data import convert_fer_csv

        output = Path(args.output)
        counts = convert_fer_csv(args.csv, output)
        for split, count in counts.items():
            print(f"{count:,} faces in {output / split}", file=sys.stderr)
        if "private_test" in counts:
            print(f"score a model on the held-out faces with: python evaluate.py --data {output / 'private_test'}",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
