#!/usr/bin/env python3
"""Train the emotion CNN on FER2013 and write emotion_detection.keras.

A thin front end for a clone; the same command is `emotion-train` once the package is
installed. Options and examples: python train.py --help, and emotion_recognition/cli/train.py.
"""

from emotion_recognition.cli.train import main

if __name__ == "__main__":
    main()
