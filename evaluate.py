#!/usr/bin/env python3
"""Score a trained model on a labelled folder (one subfolder per emotion).

A thin front end for a clone; the same command is `emotion-evaluate` once the package is
installed. Options and examples: python evaluate.py --help, and emotion_recognition/cli/evaluate.py.
"""

from emotion_recognition.cli.evaluate import main

if __name__ == "__main__":
    main()
