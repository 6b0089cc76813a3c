#!/usr/bin/env python3
"""Recognize facial emotions live from a webcam, in a video file, or in images.

A thin front end for a clone; the same command is `emotion-recognition` once the package is
installed. Options and examples: python recognition.py --help, and emotion_recognition/cli/recognize.py.
"""

from emotion_recognition.cli.recognize import main

if __name__ == "__main__":
    main()
