"""Recognize facial emotions live from a webcam, in a video file, or in images.

    emotion-recognition                           # webcam 0, in a window; q, Esc or its close button quits
    emotion-recognition --selfie                  # the same, mirrored, as video calls show you to yourself
    emotion-recognition --source clip.mp4 --no-display --output annotated.mp4
    emotion-recognition --source rtsp://192.168.1.20:554/stream   # a network camera's stream
    emotion-recognition --source interview.mp4 --no-display --report interview/   # CSV, summary, timeline
    emotion-recognition --source videos/ --report reports/ --workers 4            # a whole folder of videos
    emotion-recognition --image photo.jpg --json --no-display
    emotion-recognition --image photos/ --output annotated/ --no-display   # a folder, recursively
    emotion-recognition --serve                   # a camera page and a JSON API at http://127.0.0.1:8000/
    emotion-recognition --export model.tflite     # the model's LiteRT form, for deploying elsewhere

(`python recognition.py ...` in a clone does the same.)
"""

import argparse
import sys
from pathlib import Path

from . import HelpFormatter, add_standard_options
from .. import sources
from ..config import DEFAULT_MODEL_PATH, SERVE_HOST, SERVE_MAX_UPLOAD_MB, SERVE_PORT
from ..errors import UserError, check_writable, ensure_folder, friendly_errors
from ..faces import MIN_FACE
from ..recognizer import CLASSIFY_INTERVAL, MIRROR
from ..tracking import HALF_LIFE

ADVICE = {
    "no-display": "add --no-display, and --output FILE or --json to see the results",
    "no-camera": "try another index (--source 1), or use --source VIDEO, --source URL (a network camera) "
                 "or --image PHOTO",
    "no-stream": "open the same address in VLC to check it; a phone's webcam app shows its address on screen",
    "no-frames": "or use --image PHOTO",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Find faces with OpenCV's Haar cascade and classify each one's emotion "
                    "(angry, disgust, fear, happy, neutral, sad, surprise) with the trained CNN. "
                    "In the window, q, Esc or the close button quits; with several images, any other key "
                    "shows the next.",
        formatter_class=HelpFormatter)
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--source", nargs="+", default=["0"], metavar="SOURCE",
                        help="camera index (0 is the default webcam), a network stream's address (rtsp://..., "
                             "http://...: an IP camera, or a phone's webcam app), or a video file; several video "
                             "files or folders of them (searched recursively) make a batch, with --report")
    inputs.add_argument("--image", nargs="+", metavar="PATH",
                        help="image files or folders (searched recursively) instead of a video; files in a folder "
                             "that are not readable images are skipped with a warning")
    inputs.add_argument("--export", metavar="PATH",
                        help="write the model's LiteRT (.tflite) form, checked against Keras, and exit")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH),
                        help="trained .keras model")
    parser.add_argument("--output", metavar="PATH",
                        help="write the annotated video or image here (a folder for several images or a folder of them, "
                             "mirroring its layout)")
    parser.add_argument("--bars", action=argparse.BooleanOptionalAction, default=True,
                        help="beside each face in the window and --output, its seven probabilities as bars; "
                             "--no-bars draws only the box and the likeliest emotion")
    parser.add_argument("--no-display", action="store_true",
                        help="open no window (servers, SSH); prints a summary on stderr")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object per frame or image on stdout: {"frame": 0, "time": 0.0, "faces": [...]}, '
                             'each video face with its "id"')
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N classified frames")
    stream = parser.add_argument_group("video and camera")
    stream.add_argument("--every", type=int, default=1, metavar="N",
                        help="classify every Nth frame (the others are skipped without decoding); JSON lines keep "
                             "the source's frame numbers and times")
    stream.add_argument("--half-life", type=float, default=HALF_LIFE, metavar="SECONDS",
                        help="smooth each face's probabilities over this much of the stream's time (a face is then "
                             f"classified every {CLASSIFY_INTERVAL:g} s, as it is and mirrored, and its smoothed "
                             "probabilities shown in every frame)")
    stream.add_argument("--no-smoothing", action="store_true",
                        help="classify every face in every frame and show its raw probabilities (no smoothing)")
    stream.add_argument("--reconnect", type=float, default=sources.RECONNECT_S, metavar="SECONDS",
                        help="a network stream that stops is opened again for up to this long (Wi-Fi cameras drop "
                             "out for moments, phone apps while the screen locks); 0 ends the run at once")
    stream.add_argument("--report", metavar="DIR",
                        help="write faces.csv (a row per face per frame, as it goes), summary.json (per face: time "
                             "in view, share of each emotion) and timeline.png into DIR; with several videos, a "
                             "folder per video and an index, videos.csv, and videos already reported are skipped")
    stream.add_argument("--workers", type=int, default=None, metavar="N",
                        help="videos processed side by side in a batch, or recognitions at once with --serve "
                             "(default: one per core)")
    stream.add_argument("--cluster", metavar="ADDRESS",
                        help="process a batch's videos on a Dask cluster (tcp://host:8786) instead; the videos and "
                             "the --report folder must be at the same paths on every worker (pip install '.[cluster]')")
    stream.add_argument("--selfie", action="store_true",
                        help="show the picture mirrored, as video calls show you to yourself (move left, it "
                             "moves left); the --output video and the JSON boxes are of the mirrored picture")
    detection = parser.add_argument_group("face detection")
    detection.add_argument("--turned", action=argparse.BooleanOptionalAction, default=True,
                           help="also find faces turned in the picture (a tilted head: up to about 45 degrees), "
                                "by searching turned copies of the frame, and read them upright; --no-turned "
                                "finds upright faces only, faster")
    detection.add_argument("--min-face", type=int, default=MIN_FACE, metavar="PX",
                           help="smallest face looked for, in frame pixels; smaller values find faces further "
                                "away but cost time (most of a search goes into the smallest sizes)")
    serving = parser.add_argument_group("web service (needs the serve extra: pip install '.[serve]')")
    serving.add_argument("--serve", action="store_true",
                         help="serve a camera page and a JSON API (POST /v1/analyze) at http://HOST:PORT/ "
                              "instead of opening a window")
    serving.add_argument("--host", default=SERVE_HOST,
                         help="address to listen on; 0.0.0.0 opens the service to the network")
    serving.add_argument("--port", type=int, default=SERVE_PORT, help="port to listen on (0: any free one)")
    serving.add_argument("--max-upload-mb", type=float, default=SERVE_MAX_UPLOAD_MB, metavar="MB",
                         help="largest photo or camera frame accepted")
    serving.add_argument("--certfile", metavar="PEM",
                         help="certificate for HTTPS, which browsers need before a page on another device gets "
                              "the camera")
    serving.add_argument("--keyfile", metavar="PEM", help="the certificate's private key (if not in --certfile)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=MIRROR,
                        help="average each face's answers with its mirror image's (a little more accurate, at "
                             "twice the classifier's cost per face); by default a photo's faces and an unsmoothed "
                             "video's are classified as they are, while a smoothed video always averages both")
    add_standard_options(parser)
    return parser.parse_args(argv)


def check_options(args):
    """The options the stream settings do not check themselves."""
    if args.min_face < 1:
        raise UserError(f"--min-face must be at least 1 pixel, not {args.min_face}")
    if args.selfie and args.image:
        raise UserError("--selfie mirrors a camera or a video; a photo is shown as it was taken")
    if args.report and args.image:
        raise UserError("--report is for videos, cameras and streams; for photos use --json")
    if args.serve and (args.image or args.output or args.json or args.report):
        raise UserError("--serve takes photos and camera frames over HTTP; leave out --image, --output, --json "
                        "and --report")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be 1 or more, not {args.workers}")


def is_batch(args):
    """Several videos, or a folder of them."""
    return not args.image and (len(args.source) > 1 or Path(args.source[0]).is_dir())


def check_batch_options(args):
    if not args.report:
        raise UserError("several videos need --report DIR: a report folder per video and an index")
    for option, given in (("--output", args.output), ("--json", args.json), ("--selfie", args.selfie)):
        if given:
            raise UserError(f"{option} is for one video; a batch writes its reports with --report")


def stream_settings(args):
    """The StreamSettings the options ask for; a bad value is a UserError naming its option."""
    from ..pipeline import StreamSettings

    try:
        return StreamSettings(display=not args.no_display, output=args.output, max_frames=args.max_frames,
                              every=args.every, half_life=None if args.no_smoothing else args.half_life,
                              bars=args.bars, reconnect=args.reconnect, selfie=args.selfie)
    except ValueError as error:  # its message starts with the setting's name, which is the option's
        raise UserError(f"--{error}") from None


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug, ADVICE):
        if args.export:
            export(args.model, args.export)
            return
        # Imported here so that --help answers at once, without loading the model runtime.
        from .. import pipeline
        from ..recognizer import EmotionRecognizer
        from ..window import check_display

        check_options(args)
        if args.serve:
            from ..server import serve  # a UserError naming the extra where it is missing

            serve(args.model, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
                  certfile=args.certfile, keyfile=args.keyfile, min_face=args.min_face, mirror=args.mirror,
                  workers=args.workers, turned=args.turned)
            return
        settings = stream_settings(args)
        if is_batch(args):
            batch(args, settings)
            return
        if args.cluster or args.workers:
            raise UserError("--workers and --cluster are for several videos (a batch)")
        if settings.display:
            check_display()
        single_image = args.image and len(args.image) == 1 and not Path(args.image[0]).is_dir()
        if args.output and (single_image or not args.image):
            check_writable(args.output, "--output")
        recognizer = EmotionRecognizer(args.model, min_face=args.min_face, mirror=args.mirror, turned=args.turned)
        if args.image:
            summary = pipeline.run_images(recognizer, args.image, output=args.output, display=settings.display,
                                          as_json=args.json, bars=args.bars)
            if not single_image:
                skipped = len(summary.skipped)
                print(f"{summary.images} images, {summary.faces} faces"
                      + (f"; skipped {skipped} file(s) that are not readable images" if skipped else "")
                      + (f"; annotated copies in {args.output}" if args.output else ""), file=sys.stderr)
            return
        source = args.source[0]
        listeners = [pipeline.JsonLines()] if args.json else []
        if args.report:
            from ..reports import ReportWriter

            ensure_folder(args.report, "--report")  # before the run, not at its first frame
            listeners.append(ReportWriter(args.report, source))
        summary = pipeline.run_stream(recognizer, source, settings, listeners)
        source = summary.source
        if source.live and summary.source_ended:  # else a window that closes by itself is a mystery
            print(source.why_stopped(), file=sys.stderr)
        if source.dropped:
            print(f"{source.dropped} frames of the stream arrived while others were being classified and "
                  "were left out, to keep up with it", file=sys.stderr)
        if not settings.display:
            print(f"{summary.frames} frames, {summary.faces} faces, {summary.fps:.1f} frames/s"
                  + (f"; wrote {args.output}" if args.output else "")
                  + (f"; report in {args.report}" if args.report else ""), file=sys.stderr)


def batch(args, settings):
    """Reports for several videos; the exit status says whether any failed."""
    from ..batch import FAILED, INDEX_CSV, RecognizerOptions, run_batch

    check_batch_options(args)
    options = RecognizerOptions(model=str(args.model), min_face=args.min_face, mirror=args.mirror, turned=args.turned)
    results = run_batch(args.source, args.report, options, settings, workers=args.workers, cluster=args.cluster)
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", FAILED)}
    print(f"{len(results)} videos: {counts['done']} done, {counts['skipped']} skipped (reported before), "
          f"{counts[FAILED]} failed; index in {Path(args.report) / INDEX_CSV}", file=sys.stderr)
    if counts[FAILED]:
        sys.exit(1)


def export(model, destination):
    """--export: the model's LiteRT form, checked against Keras, written to `destination`."""
    from ..litert_files import export_litert
    from ..runtime import import_tensorflow

    import_tensorflow()  # the check against Keras needs it; its start-up notices stay hidden
    check_writable(destination, "--export")
    deviation = export_litert(model, destination)
    print(f"wrote {destination} (largest deviation from Keras on a probe batch: {deviation:.1e})", file=sys.stderr)


if __name__ == "__main__":
    main()
