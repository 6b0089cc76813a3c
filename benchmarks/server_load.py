#!/usr/bin/env python3
"""Requests/s and latency of the web service (server.py) with many clients sending photos side by side.

Starts the server as a process of its own on a free port of 127.0.0.1 (or measures one already running:
--url). Each client is a thread with one keep-alive connection that posts the astronaut photo to
/v1/analyze and waits for the answer before sending the next. Prints requests/s, the median and 95th
percentile latency, and how many requests failed or were turned away busy (503). Only the standard
library on the client side; the server needs the `serve` extra (pip install '.[serve]').

    python benchmarks/server_load.py                           # 16 clients x 25 requests
    python benchmarks/server_load.py --clients 4 --requests 50 --workers 1
    python benchmarks/server_load.py --url http://127.0.0.1:8000
"""

import argparse
import http.client
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from contextlib import contextmanager, nullcontext
from pathlib import Path

import cv2

from emotion_recognition.cli import HelpFormatter
from emotion_recognition.errors import UserError, friendly_errors
from emotion_recognition.runtime import cpu_description

CLIENTS, REQUESTS = 16, 25      # a busy office's load: 16 browsers or programs, 25 photos each
REQUEST_TIMEOUT_S = 60          # a request that takes longer counts as an error
STARTUP_S = 60                  # the server imports the package and loads the model before it listens
LISTENING = re.compile(r"listening on (https?://[\d.]+:\d+)/")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--clients", type=int, default=CLIENTS, help="clients sending side by side")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="requests each client sends, one at a time")
    parser.add_argument("--url", help="a running server to measure, e.g. http://127.0.0.1:8000 "
                                      "(else one is started on a free port of 127.0.0.1)")
    parser.add_argument("--workers", type=int, help="the started server's recognition threads (default: its own)")
    parser.add_argument("--image", help="the photo to send (default: scikit-image's astronaut, one happy face)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def photo_bytes(path=None):
    if path:
        if not Path(path).is_file():
            raise UserError(f"{path} is not a file; give a photo with --image")
        return Path(path).read_bytes()
    from skimage import data
    return cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()


@contextmanager
def started_server(workers=None):
    """A server process on a free port of 127.0.0.1; yields its URL, stops it after (its log is kept aside)."""
    options = {"port": 0} | ({"workers": workers} if workers else {})
    code = f"from emotion_recognition.server import serve; serve(**{options!r})"
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                log.seek(0)
                text = log.read()
                if match := LISTENING.search(text):
                    yield match[1]
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise UserError(f"the server did not start:\n{text.strip()}")
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=STARTUP_S)


class Client:
    """One keep-alive connection that posts a photo and waits for the answer each time."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.connect = lambda: kind(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT_S)
        self.connection = self.connect()

    def analyze(self, photo):
        """(status, answer or None, seconds); status 0 for a connection that failed."""
        start = time.perf_counter()
        try:
            self.connection.request("POST", "/v1/analyze", body=photo, headers={"Content-Type": "image/png"})
            response = self.connection.getresponse()
            body = response.read()
            answer = json.loads(body) if response.status == 200 else None
            status = response.status
        except (OSError, http.client.HTTPException, json.JSONDecodeError):
            self.connection.close()
            self.connection = self.connect()
            status, answer = 0, None
        return status, answer, time.perf_counter() - start


def run_load(url, photo, clients, requests):
    """Every request's (status, answer, seconds), and the wall time of the whole run."""
    results, lock = [], threading.Lock()
    start = threading.Barrier(clients + 1)

    def client():
        session = Client(url)
        session.analyze(photo)             # warm-up: the connection, and the server thread's interpreters
        start.wait()
        mine = [session.analyze(photo) for _ in range(requests)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - began


def summarize(results, seconds, clients, requests, expected):
    latencies = sorted(took for status, _, took in results if status == 200)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [float("nan")] * 99
    return {
        "clients": clients, "requests_each": requests, "requests": len(results), "seconds": round(seconds, 2),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(cuts[49] * 1000, 1), "p95_ms": round(cuts[94] * 1000, 1),
        "busy_503": sum(status == 503 for status, _, _ in results),
        "errors": sum(status not in (200, 503) for status, _, _ in results),
        "different_answers": sum(status == 200 and answer != expected for status, answer, _ in results),
        "cpu": cpu_description(),
    }


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors(args.debug):
        if args.clients < 1 or args.requests < 1:
            raise UserError("--clients and --requests must be 1 or more")
        photo = photo_bytes(args.image)
        with nullcontext(args.url.rstrip("/")) if args.url else started_server(args.workers) as url:
            status, expected, _ = Client(url).analyze(photo)
            if status != 200:
                raise UserError(f"{url}/v1/analyze answered {status or 'nothing'} to the photo; is it the "
                                "emotion recognition server?")
            results, seconds = run_load(url, photo, args.clients, args.requests)
        figures = summarize(results, seconds, args.clients, args.requests, expected)
        if args.json:
            print(json.dumps(figures))
            return
        print(f"{figures['requests']} requests ({args.clients} clients x {args.requests}) to {url} in "
              f"{figures['seconds']} s, on {figures['cpu']}")
        print(f"  {figures['requests_per_s']} requests/s; latency p50 {figures['p50_ms']} ms, "
              f"p95 {figures['p95_ms']} ms")
        print(f"  {figures['errors']} errors, {figures['busy_503']} turned away busy (503), "
              f"{figures['different_answers']} answers unlike the first")


if __name__ == "__main__":
    main()
