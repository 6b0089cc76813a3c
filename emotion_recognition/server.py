"""The recognizer as a small local web service: a camera page, a JSON API and a WebSocket stream.

    from emotion_recognition.server import serve
    serve()                          # http://127.0.0.1:8000/ on this machine only

What it serves:
- `/`                 a page that sends the camera's frames over a WebSocket and draws each face's box,
                      emotion and probabilities over the video; a dropped photo goes to /v1/analyze;
- `POST /v1/analyze`  an image (the raw body, or a file in a multipart form) -> the same JSON as the
                      command line's --json for one image: {"image": ..., "faces": [...]};
- `/v1/stream`        a WebSocket: binary JPEG/PNG frames in, {"faces": [...]} out, one answer per frame;
                      each connection is a stream with its own face ids and smoothing;
- `GET /healthz`, and FastAPI's /docs and /openapi.json.

Safety: it listens on 127.0.0.1 unless told otherwise; a body or a frame beyond the size limit is refused
(by its Content-Length before it is read, and by counting while it is read); uploads stay in memory and
are never written to disk; errors are JSON with a message, never a traceback. Under load, recognition
runs in a thread pool of one thread per core, a bounded number of requests wait for it, and the rest
get 503 with Retry-After, so memory does not pile up.

Needs the `serve` extra: pip install '.[serve]'.
"""

import asyncio
import io
import logging
import os
import socket
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from . import __version__
from .config import DEFAULT_MODEL_PATH, SERVE_HOST, SERVE_MAX_UPLOAD_MB, SERVE_PORT
from .errors import UserError
from .faces import MIN_FACE
from .preprocessing import decode_image
from .recognizer import MIRROR, EmotionRecognizer

try:
    import anyio
    import uvicorn
    from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from PIL import Image, UnidentifiedImageError
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
except ImportError as error:
    raise UserError(f"the web service needs the 'serve' extra ({error.name} is missing): "
                    "pip install '.[serve]' in a clone, or pip install 'emotion-recognition[serve]'") from error

logger = logging.getLogger(__name__)

# --- Settings -------------------------------------------------------------------------------------
HOST, PORT, MAX_UPLOAD_MB = SERVE_HOST, SERVE_PORT, SERVE_MAX_UPLOAD_MB  # see config.py
MAX_IMAGE_PIXELS = 50_000_000  # 50 MP, a 150 MB decoded frame: a small file may decode to gigabytes
WORKERS = os.cpu_count() or 1  # recognition is CPU-bound: one thread per core keeps every core busy
QUEUE_PER_WORKER = 4      # requests admitted beyond the running ones, per worker, waiting their turn
QUEUE_WAIT_S = 2.0        # how long a request waits for a place in that queue before it gets 503
RETRY_AFTER_S = 1         # what 503 tells a client to wait: about what a full queue takes to drain
MAX_STREAMS = 8           # camera streams at once: each has a thread; more would share the CPU too thinly
SHUTDOWN_GRACE_S = 3      # Ctrl-C waits this long for open requests and streams, then closes them
STATIC_DIR = Path(__file__).resolve().parent / "static"   # the page: package data, nothing from the internet
ANALYZE_PATH, STREAM_PATH = "/v1/analyze", "/v1/stream"
MEGABYTE = 1024 * 1024

# The page loads only what this server serves; frames never leave for another origin.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=()",
}
WS_TRY_AGAIN_LATER = 1013   # WebSocket close code: the server is busy (RFC 6455's registry)
WS_POLICY_VIOLATION = 1008  # WebSocket close code: the request broke a rule (here: another site's page)


# --- Errors: always JSON with a message -----------------------------------------------------------
def error_response(status, message, headers=None, **extra):
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


async def http_error(request, exc):
    return error_response(exc.status_code, exc.detail, exc.headers)


async def validation_error(request, exc):
    problems = "; ".join(f"{'.'.join(map(str, problem['loc'][1:])) or problem['loc'][0]}: {problem['msg']}"
                         for problem in exc.errors())
    return error_response(422, f"bad parameter: {problems}", details=jsonable_encoder(exc.errors()))


async def internal_error(request, exc):
    # uvicorn logs the traceback after this answer; the client gets one line.
    logger.error("%s %s failed: %r", request.method, request.url.path, exc)
    return error_response(500, "internal error; the server's log has the details")


def too_large(what, limit_bytes):
    # Connection: close, so that the rest of an oversized body is not even read (and thrown away).
    return HTTPException(413, f"{what} is larger than the server's limit of {limit_bytes / MEGABYTE:g} MB; "
                              "send a smaller image", headers={"Connection": "close"})


# --- Uploads: read into memory within the limit, and decoded -----------------------------------------
async def read_body(request, limit_bytes):
    """The request's body, refused with 413 as soon as it is known to exceed limit_bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise too_large("the body", limit_bytes)   # before a byte of it is read
    chunks, size = [], 0
    try:
        async for chunk in request.stream():       # a client may lie, or send it chunked: count
            size += len(chunk)
            if size > limit_bytes:
                raise too_large("the body", limit_bytes)
            chunks.append(chunk)
    except ClientDisconnect:                       # nobody to answer; no need for a traceback in the log
        raise HTTPException(400, "the client left before sending the whole body") from None
    return b"".join(chunks)


def header_message(lines):
    """Headers ('Name: value' lines, as bytes) parsed into an email.message.Message for their parameters."""
    return BytesParser(policy=policy.HTTP).parsebytes(lines.strip() + b"\r\n\r\n", headersonly=True)


def form_file(body, content_type):
    """(filename, content) of the first file in a multipart/form-data body, or None if it holds none.

    The body is in memory already (within the limit): split at its boundary here, rather than by a
    form parser that would spool large files to a temporary file on disk."""
    boundary = header_message(f"Content-Type: {content_type}".encode("latin-1")).get_boundary()
    if not boundary:
        raise HTTPException(400, "the multipart form has no boundary; send it as a browser or HTTP library does")
    # The line break before each delimiter belongs to the delimiter (RFC 2046), so a part ends just before it.
    parts = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    for part in parts[1:]:
        if part.startswith(b"--"):                 # the closing delimiter
            break
        head, blank_line, content = part.partition(b"\r\n\r\n")
        filename = header_message(head).get_filename() if blank_line else None
        if filename is not None:
            return filename, content
    return None


def image_from_bytes(data, limit_bytes):
    """A BGR image from encoded bytes; HTTPException 400 if they are not a readable image, 413 if too big."""
    if not data:
        raise HTTPException(400, "no image received; send a JPEG or PNG image (the raw body, or a file in a form)")
    if len(data) > limit_bytes:
        raise too_large("the image", limit_bytes)
    try:  # the image's size from its header, before decoding: Pillow reads the header only
        with Image.open(io.BytesIO(data)) as header:
            pixels = header.width * header.height
    except Image.DecompressionBombError:
        pixels = float("inf")
    except (UnidentifiedImageError, OSError, ValueError):
        pixels = None                              # a format OpenCV may know and Pillow not: let it try
    if pixels is not None and pixels > MAX_IMAGE_PIXELS:
        raise HTTPException(413, f"the image has more than the server's limit of {MAX_IMAGE_PIXELS / 1e6:g} "
                                 "megapixels; send a smaller one")
    image = decode_image(data)
    if image is None:
        raise HTTPException(400, "the data is not a readable image; send a JPEG or PNG image")
    return image


# --- The service: one recognizer, a thread pool, and bounds on waiting ------------------------------
class Service:
    """What the routes share: the recognizer, its threads, and the limits that keep memory bounded."""

    def __init__(self, recognizer, max_upload_mb, workers, queue, queue_wait_s, max_streams):
        self.recognizer = recognizer
        self.limit_bytes = int(max_upload_mb * MEGABYTE)
        self.workers, self.queue_wait_s, self.max_streams = workers, queue_wait_s, max_streams
        # Threads live as long as the server, so each builds its interpreters once (EmotionRecognizer
        # gives every thread its own).
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="recognize")
        self.cpu = anyio.CapacityLimiter(workers)  # recognitions at once, photos and stream frames alike
        # Requests being served: reading, waiting for a thread, or recognized. Bounds uploads in memory.
        self.admission = anyio.Semaphore(workers + queue)
        self.streams = 0

    @asynccontextmanager
    async def admitted(self):
        """A place among the requests being served, waited for at most queue_wait_s; else 503."""
        try:
            self.admission.acquire_nowait()
        except anyio.WouldBlock:
            acquired = False
            with anyio.move_on_after(self.queue_wait_s):
                await self.admission.acquire()
                acquired = True
            if not acquired:
                raise HTTPException(503, "the server is busy; try again in a moment",
                                    headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        try:
            yield
        finally:
            self.admission.release()

    async def run(self, function, *args, thread=None):
        """function(*args) in a thread (the pool's, or `thread`), when a CPU place is free."""
        async with self.cpu:
            # Shielded: once started, the work finishes and its place is given back only then.
            with anyio.CancelScope(shield=True):
                return await asyncio.get_running_loop().run_in_executor(thread or self.pool, function, *args)

    def analyze_upload(self, body, content_type):
        """(name, faces) for an uploaded image; runs in a worker thread."""
        name = "upload"
        if content_type.lower().startswith("multipart/form-data"):
            found = form_file(body, content_type)
            if found is None:
                raise HTTPException(400, "the form holds no file; send the image as a file field (e.g. 'file')")
            name, body = found[0] or name, found[1]
        return name, self.recognizer.detect(image_from_bytes(body, self.limit_bytes))

    def analyze_frame(self, stream, data, seconds):
        """One stream frame's answer (a dict for the page); runs in the stream's own thread."""
        try:
            image = image_from_bytes(data, self.limit_bytes)
        except HTTPException as error:
            return {"error": error.detail}
        faces = stream.detect(image, seconds)
        return {"faces": [face.to_dict() for face in faces], "width": image.shape[1], "height": image.shape[0]}

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


# --- HTTP routes ------------------------------------------------------------------------------------
ANALYZE_BODY = {  # for /docs: the body is read by hand (see read_body), so FastAPI cannot infer it
    "required": True,
    "content": {
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
    },
}


async def analyze(request: Request,
                  max_faces: Annotated[int | None, Query(ge=1, description="answer only the largest N faces")] = None):
    """Faces and emotions in one image: the raw body, or a file in a multipart form.

    Answers as the command line's --json does for one image: {"image": name, "faces": [...]}, each face
    {"box": [x, y, w, h], "emotion", "confidence", "probabilities"}. "image" is the file's name in a form,
    else "upload"."""
    service = request.app.state.service
    async with service.admitted():
        body = await read_body(request, service.limit_bytes)
        name, faces = await service.run(service.analyze_upload, body, request.headers.get("content-type", ""))
    if max_faces is not None:
        faces = sorted(faces, key=lambda face: face.box[2] * face.box[3], reverse=True)[:max_faces]
    return {"image": name, "faces": [face.to_dict() for face in faces]}


async def healthz(request: Request):
    """Whether the service is up, and its settings."""
    service = request.app.state.service
    return {"status": "ok", "version": __version__, "model": Path(service.recognizer.model_path).name,
            "workers": service.workers, "max_upload_mb": service.limit_bytes / MEGABYTE,
            "streams": service.streams}


async def page():
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


# --- The WebSocket stream ---------------------------------------------------------------------------
def same_origin(headers):
    """False for a page of another site (a browser always sends Origin); true for other clients."""
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host")


async def stream_socket(websocket: WebSocket):
    """Frames in, faces out: one frame at a time, in the order sent. The page sends its next frame once
    the answer to the last one arrives, so the one waiting is always the newest."""
    service = websocket.app.state.service
    if not same_origin(websocket.headers):  # another site's page must not use this machine's recognizer
        await websocket.close(code=WS_POLICY_VIOLATION)
        return
    await websocket.accept()
    if service.streams >= service.max_streams:
        await websocket.close(code=WS_TRY_AGAIN_LATER,
                              reason=f"the server serves {service.max_streams} streams at once; try again later")
        return
    service.streams += 1
    # A stream belongs to one thread (see recognizer.py): this connection's own, forgotten with it.
    thread = ThreadPoolExecutor(1, thread_name_prefix="stream")
    try:
        stream = await service.run(service.recognizer.stream, thread=thread)
        start = time.monotonic()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is None:
                await websocket.send_json({"error": "send each frame as a binary message: a JPEG or PNG image"})
                continue
            answer = await service.run(service.analyze_frame, stream, message["bytes"], time.monotonic() - start,
                                       thread=thread)
            await websocket.send_json(answer)
    except WebSocketDisconnect:
        pass
    finally:
        service.streams -= 1
        thread.shutdown(wait=False)


# --- The application ---------------------------------------------------------------------------------
def create_app(recognizer, max_upload_mb=MAX_UPLOAD_MB, workers=None, queue=None, queue_wait_s=QUEUE_WAIT_S,
               max_streams=MAX_STREAMS):
    """The ASGI application around an EmotionRecognizer (shared by all threads; it is thread-safe).

    workers: recognitions at once (default: one per core). queue: requests admitted beyond those, waiting
    (default QUEUE_PER_WORKER per worker); more wait up to queue_wait_s seconds for a place, then get 503."""
    workers = workers or WORKERS
    queue = QUEUE_PER_WORKER * workers if queue is None else queue
    service = Service(recognizer, max_upload_mb, workers, queue, queue_wait_s, max_streams)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="Emotion recognition", version=__version__, lifespan=lifespan, redoc_url=None,
                  description="Faces and their emotions in images and camera streams.")
    app.state.service = service
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
    app.add_api_route(ANALYZE_PATH, analyze, methods=["POST"], openapi_extra={"requestBody": ANALYZE_BODY})
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.add_api_websocket_route(STREAM_PATH, stream_socket)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


# --- Serving ---------------------------------------------------------------------------------------
def check_options(port, max_upload_mb, certfile, keyfile, workers, queue):
    if not 0 <= port <= 65535:
        raise UserError(f"port must be 0-65535 (0: any free one), not {port}")
    if not max_upload_mb > 0:
        raise UserError(f"max_upload_mb must be more than 0, not {max_upload_mb:g}")
    if workers is not None and workers < 1:
        raise UserError(f"workers must be 1 or more, not {workers}")
    if queue is not None and queue < 0:
        raise UserError(f"queue must be 0 or more, not {queue}")
    if keyfile and not certfile:
        raise UserError("a keyfile needs its certfile too (HTTPS needs both; a certfile may hold the key itself)")
    for path in (certfile, keyfile):
        if path and not Path(path).is_file():
            raise UserError(f"{path} is not a file; give the path of a PEM certificate or key")


def listen(host, port):
    """A listening socket on host:port; UserError if that address cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, socket.gaierror) as error:
        raise UserError(f"cannot listen on {host}: {error.strerror}; give an address of this machine, "
                        "such as 127.0.0.1 or 0.0.0.0") from error
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
        sock.bind(address)
        sock.listen()
    except OSError as error:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}); choose another port, "
                        "or stop what is using it") from error
    return sock


def describe_address(sock, tls):
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    line = f"listening on {'https' if tls else 'http'}://{shown}:{port}/ (Ctrl-C stops it)"
    if host in ("0.0.0.0", "::"):
        line += f"; from another device open {'https' if tls else 'http'}://<this machine's address>:{port}/"
        if not tls:
            line += " (browsers allow the camera there only over HTTPS: give a certfile and keyfile)"
    return line


def serve(model_path=DEFAULT_MODEL_PATH, host=HOST, port=PORT, max_upload_mb=MAX_UPLOAD_MB, certfile=None,
          keyfile=None, min_face=MIN_FACE, mirror=MIRROR, workers=None, queue=None, queue_wait_s=QUEUE_WAIT_S,
          turned=True):
    """Serve the recognizer until Ctrl-C, then return (see the module's docstring). port=0: any free port.

    certfile, keyfile: PEM files for HTTPS, which browsers need before they give a page on another
    device the camera. min_face, mirror, turned: as EmotionRecognizer's. workers, queue, queue_wait_s: as
    create_app's. Raises UserError for options that cannot work (a busy port, a missing file)."""
    check_options(port, max_upload_mb, certfile, keyfile, workers, queue)
    recognizer = EmotionRecognizer(model_path, min_face=min_face, mirror=mirror, turned=turned)
    app = create_app(recognizer, max_upload_mb, workers, queue, queue_wait_s)
    config = uvicorn.Config(app, ssl_certfile=certfile, ssl_keyfile=keyfile, log_level="info",
                            ws_max_size=app.state.service.limit_bytes, server_header=False, proxy_headers=False,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    try:
        config.load()
    except (ssl.SSLError, OSError) as error:
        raise UserError(f"cannot use the certificate {certfile} ({error}); give a PEM certificate and its key") \
            from error
    sock = listen(host, port)
    print(describe_address(sock, tls=certfile is not None), file=sys.stderr, flush=True)
    with sock:
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl-C, then raises it again: a normal end
            print("stopped", file=sys.stderr)
