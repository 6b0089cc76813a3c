"""Recognize facial emotions live from a webcam, in a video file, or in images.

    emotion-recognition                           # webcam 0, in a window; q or Esc quits
    emotion-recognition --source clip.mp4 --no-display --output annotated.mp4
    emotion-recognition --image photo.jpg --json --no-display
    emotion-recognition --export model.tflite     # the model's LiteRT form, for deploying elsewhere

(`python recognition.py ...` in a clone does the same.)
"""

import argparse
import sys

from ..config import DEFAULT_MODEL_PATH
from ..errors import check_writable, friendly_errors

ADVICE = {
    "no-display": "add --no-display, and --output FILE or --json to see the results",
    "no-camera": "try another index (--source 1), or use --source VIDEO or --image PHOTO",
    "no-frames": "or use --image PHOTO",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Find faces with OpenCV's Haar cascade and classify each one's emotion "
                    "(angry, disgust, fear, happy, neutral, sad, surprise) with the trained CNN.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--source", default="0",
                        help="camera index (0 is the default webcam) or a video file")
    inputs.add_argument("--image", nargs="+", metavar="PATH", help="one or more image files instead of a video")
    inputs.add_argument("--export", metavar="PATH",
                        help="write the model's LiteRT (.tflite) form, checked against Keras, and exit")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH),
                        help="trained .keras model (the shipped one by default)")
    parser.add_argument("--output", metavar="PATH",
                        help="write the annotated video or image here (a folder for several --image files)")
    parser.add_argument("--no-display", action="store_true",
                        help="open no window (servers, SSH); prints a summary on stderr")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object per frame or image on stdout: {"frame": 0, "faces": [...]}')
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug, ADVICE):
        if args.export:
            from ..classifier import export_litert
            from ..runtime import import_tensorflow

            import_tensorflow()  # the check against Keras needs it; its start-up notices stay hidden
            check_writable(args.export, "--export")
            deviation = export_litert(args.model, args.export)
            print(f"wrote {args.export} (largest deviation from Keras on a probe batch: {deviation:.1e})",
                  file=sys.stderr)
            return
        # Imported here so that --help answers at once, without loading the model runtime.
        from .. import video
        from ..recognizer import EmotionRecognizer

        display = not args.no_display
        if display:
            video.check_display()
        if args.image and args.output and len(args.image) == 1:
            check_writable(args.output, "--output")
        recognizer = EmotionRecognizer(args.model)
        if args.image:
            video.run_images(recognizer, args.image, output=args.output, display=display, as_json=args.json)
            return
        if args.output:
            check_writable(args.output, "--output")
        summary = video.run_stream(recognizer, args.source, output=args.output, display=display,
                                   as_json=args.json, max_frames=args.max_frames)
        if not display:
            print(f"{summary['frames']} frames, {summary['faces']} faces, {summary['fps']:.1f} frames/s"
                  + (f"; wrote {args.output}" if args.output else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
