"""The web service (server.py) as a client sees it: a real server process on a free port of 127.0.0.1,
called over HTTP and WebSocket. Needs the `serve` extra (pip install '.[serve]')."""

import http.client
import inspect
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Barrier

import cv2
import numpy as np
import pytest

from conftest import ROOT

from emotion_recognition.config import CLASS_NAMES
from emotion_recognition.errors import UserError

LISTENING = re.compile(r"listening on (https?)://([\d.]+):(\d+)/")
STARTUP_S = 60          # a server process imports the package and loads the model first
SHUTDOWN_S = 15
TIMEOUT_S = 30          # any one request
OVERSIZED_MB = 30       # the example of a body beyond the default limit (10 MB)
CLIENTS, REQUESTS = 4, 5  # side by side; benchmarks/server_load.py runs the full 16 x 25


@dataclass
class Server:
    scheme: str
    host: str
    port: int
    log: Path
    process: subprocess.Popen

    @property
    def url(self):
        return f"{self.scheme}://{self.host}:{self.port}"


@contextmanager
def running_server(folder, setup="", command_line=(), **options):
    """serve(port=0, **options) in a process of its own, after the Python code `setup`; yields a Server once
    it listens, and stops it after. With `command_line`, `recognition.py --serve --port 0 *command_line`
    instead, as a user starts it."""
    log = Path(folder) / "server.log"
    if command_line:
        script = str(ROOT / "recognition.py")
        arguments = [script, "--serve", "--port", "0", *command_line]
        code = f"{setup}\nimport runpy, sys\nsys.argv = {arguments!r}\nrunpy.run_path({script!r}, run_name='__main__')"
    else:
        code = f"{setup}\nfrom emotion_recognition.server import serve\nserve(port=0, **{options!r})"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_S
        while not (match := LISTENING.search(log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Server(match[1], match[2], int(match[3]), log, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(SHUTDOWN_S)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"the server did not stop on Ctrl-C within {SHUTDOWN_S} s:\n{log.read_text()}")
        assert process.returncode == 0, log.read_text()


# Server-side code that logs every file the process opens for writing (Python's audit hooks see them all,
# temporary files included, even those that never get a name).
WATCH_WRITES = """
import os, sys
def watch(event, args):
    if event != "open" or args[0] == os.devnull:  # the runtime silences native notices in os.devnull
        return
    if isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        print(f"wrote a file: {args[0]}", file=sys.stderr, flush=True)
sys.addaudithook(watch)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Started as a user starts it: recognition.py --serve --port 0 --workers 2.
    with running_server(tmp_path_factory.mktemp("server"), setup=WATCH_WRITES, command_line=["--workers", "2"]) \
            as running:
        yield running


def request(server, method, path, body=None, headers=None):
    """(status, headers, parsed JSON or raw bytes) of one request on a connection of its own."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        is_json = response.getheader("content-type", "").startswith("application/json")
        return response.status, response.headers, json.loads(data) if is_json else data
    finally:
        connection.close()


def post_image(server, body, path="/v1/analyze", content_type="image/png"):
    return request(server, "POST", path, body, {"Content-Type": content_type})


def assert_error(answer, status):
    """An error answer: the status, and JSON with a one-line message and no traceback."""
    assert answer[0] == status, answer
    assert answer[1]["content-type"] == "application/json", answer
    message = answer[2]["error"]
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def assert_healthy(server):
    status, _, body = request(server, "GET", "/healthz")
    assert status == 200 and body["status"] == "ok", body


def multipart(filename, content, field="file", boundary="boundary4CEEB7"):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def raw_exchange(server, head, body_chunks=()):
    """Send a request's head and body chunks on a plain socket, then read the answer's first bytes.

    The server may close the connection before the whole body is sent (a 413 does): that stops the
    sending, not the reading of what it answered."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT_S) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer.decode("latin-1")


def astronaut_jpeg(path):
    return cv2.imencode(".jpg", cv2.imread(str(path)))[1].tobytes()


# --- Where it listens --------------------------------------------------------------------------------
def listening_addresses(port):
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp (Linux)."""
    addresses = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if int(local_port, 16) == port and state == "0A":  # 0A: LISTEN
            addresses.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


def test_listens_on_loopback_only_by_default(server):
    from emotion_recognition.server import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert server.host == "127.0.0.1", server.log.read_text()
    if Path("/proc/net/tcp").is_file():
        assert listening_addresses(server.port) == ["127.0.0.1"]


# --- POST /v1/analyze ----------------------------------------------------------------------------------
def test_astronaut_is_one_happy_face_as_the_command_line_says(server, astronaut_png, cli):
    status, _, answer = post_image(server, astronaut_png.read_bytes())
    assert status == 200, answer
    assert answer["image"] == "upload"
    [face] = answer["faces"]
    assert face["emotion"] == "happy" and face["confidence"] > 0.8, face
    assert set(face) == {"box", "angle", "emotion", "confidence", "probabilities"} and face["angle"] == 0
    assert tuple(face["probabilities"]) == CLASS_NAMES and abs(sum(face["probabilities"].values()) - 1) < 1e-4

    result = cli("recognize", "--image", astronaut_png, "--json", "--no-display")
    assert result.returncode == 0, result.stderr
    command_line = json.loads(result.stdout.splitlines()[0])
    assert set(answer) == set(command_line)
    assert [face["box"] for face in answer["faces"]] == [face["box"] for face in command_line["faces"]]
    for ours, theirs in zip(answer["faces"], command_line["faces"]):
        assert ours["emotion"] == theirs["emotion"]
        assert ours["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-6)


def test_a_file_in_a_form_keeps_its_name(server, astronaut_png):
    raw = post_image(server, astronaut_png.read_bytes())[2]
    body, content_type = multipart("astronaut.png", astronaut_png.read_bytes())
    status, _, answer = post_image(server, body, content_type=content_type)
    assert status == 200, answer
    assert answer == {**raw, "image": "astronaut.png"}


def test_uploads_never_touch_the_disk(server):
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1400, 3), dtype=np.uint8)
    photo = cv2.imencode(".png", noise)[1].tobytes()     # 4-5 MB: what a form parser would spool to a file
    assert 2 * 1024 * 1024 < len(photo) < 10 * 1024 * 1024
    writes_before = server.log.read_text().count("wrote a file")
    body, content_type = multipart("noise.png", photo)
    status, _, answer = post_image(server, body, content_type=content_type)
    assert status == 200 and answer == {"image": "noise.png", "faces": []}
    assert post_image(server, photo)[0] == 200
    log = server.log.read_text()
    assert log.count("wrote a file") == writes_before, log


def test_max_faces_keeps_the_largest(server, astronaut_png):
    status, _, answer = post_image(server, astronaut_png.read_bytes(), path="/v1/analyze?max_faces=1")
    assert status == 200 and len(answer["faces"]) == 1, answer


def test_what_is_not_an_image_is_400(server):
    message = assert_error(post_image(server, os.urandom(4096)), 400)
    assert "not a readable image" in message
    assert_healthy(server)
    assert "no image" in assert_error(post_image(server, b""), 400)
    body, content_type = multipart("notes.txt", b"hello")
    assert "not a readable image" in assert_error(post_image(server, body, content_type=content_type), 400)
    form_without_file = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n"
    assert "no file" in assert_error(post_image(server, form_without_file, content_type="multipart/form-data; "
                                                                                        "boundary=b"), 400)
    assert_healthy(server)


def test_a_body_beyond_the_limit_is_413_before_it_is_read(server):
    size = OVERSIZED_MB * 1024 * 1024
    head = (f"POST /v1/analyze HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    answer = raw_exchange(server, head)     # no byte of the body sent: the declared length is enough
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "application/json" in answer
    assert_healthy(server)


def test_a_body_that_grows_beyond_the_limit_unannounced_is_413(server):
    head = (f"POST /v1/analyze HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: image/png\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    megabyte = os.urandom(1024 * 1024)
    chunks = [b"%x\r\n%s\r\n" % (len(megabyte), megabyte)] * OVERSIZED_MB + [b"0\r\n\r\n"]
    answer = raw_exchange(server, head, chunks)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert_healthy(server)


def test_a_bad_parameter_is_422(server, astronaut_png):
    for value in ("0", "many"):
        message = assert_error(post_image(server, astronaut_png.read_bytes(), path=f"/v1/analyze?max_faces={value}"),
                               422)
        assert "max_faces" in message
    assert_healthy(server)


def test_other_errors_are_json_too(server):
    assert_error(request(server, "GET", "/nowhere"), 404)
    assert_error(request(server, "GET", "/v1/analyze"), 405)


def test_side_by_side_requests_all_get_the_same_answer(server, astronaut_png):
    photo = astronaut_png.read_bytes()
    expected = post_image(server, photo)[2]
    start = Barrier(CLIENTS)

    def client(_):
        start.wait()
        return [post_image(server, photo) for _ in range(REQUESTS)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [answer for answers in pool.map(client, range(CLIENTS)) for answer in answers]
    assert [status for status, _, _ in answers] == [200] * CLIENTS * REQUESTS
    assert all(body == expected for _, _, body in answers)


# --- The page, the API's description, health ----------------------------------------------------------
def test_the_page_and_its_files_come_from_the_server(server):
    status, headers, page = request(server, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    html = page.decode()
    assert 'id="emotions"' in html
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links and not [link for link in links if urllib.parse.urlsplit(link).netloc], links
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        status, headers, _ = request(server, "GET", f"/static/{name}")
        assert status == 200 and kind in headers["content-type"], (name, headers)


def test_health_and_the_api_description(server):
    status, _, health = request(server, "GET", "/healthz")
    assert status == 200 and health["status"] == "ok" and health["max_upload_mb"] == 10
    status, _, schema = request(server, "GET", "/openapi.json")
    assert status == 200 and "/v1/analyze" in schema["paths"] and "/healthz" in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert request(server, "GET", "/docs")[0] == 200


# --- The WebSocket stream ------------------------------------------------------------------------------
def stream_url(server):
    return f"ws://{server.host}:{server.port}/v1/stream"


def test_a_stream_gives_ids_and_forgets_them_when_it_closes(server, astronaut_png):
    from websockets.sync.client import connect

    frame = astronaut_jpeg(astronaut_png)
    with connect(stream_url(server), open_timeout=TIMEOUT_S) as socket_:
        answers = []
        for _ in range(3):
            socket_.send(frame)
            answers.append(json.loads(socket_.recv(TIMEOUT_S)))
        ids = [[face["id"] for face in answer["faces"]] for answer in answers]
        assert ids == [[1]] * 3, answers
        assert answers[-1]["faces"][0]["emotion"] == "happy"
        assert (answers[-1]["width"], answers[-1]["height"]) == (512, 512)
        socket_.send("a text message")
        assert "binary" in json.loads(socket_.recv(TIMEOUT_S))["error"]
        socket_.send(os.urandom(1000))
        assert "not a readable image" in json.loads(socket_.recv(TIMEOUT_S))["error"]
        assert request(server, "GET", "/healthz")[2]["streams"] == 1
    with connect(stream_url(server), open_timeout=TIMEOUT_S) as socket_:  # a new stream starts afresh
        socket_.send(frame)
        assert [face["id"] for face in json.loads(socket_.recv(TIMEOUT_S))["faces"]] == [1]
    deadline = time.monotonic() + TIMEOUT_S
    while request(server, "GET", "/healthz")[2]["streams"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request(server, "GET", "/healthz")[2]["streams"] == 0


def test_a_frame_beyond_the_limit_closes_the_stream(server):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with pytest.raises(ConnectionClosed) as closed:   # while sending the frame, or when awaiting its answer
        with connect(stream_url(server), open_timeout=TIMEOUT_S, max_size=None) as socket_:
            socket_.send(os.urandom(11 * 1024 * 1024))
            socket_.recv(TIMEOUT_S)
    # 1009: message too big; or no close frame at all, where the server's close reset the connection first
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009, closed.value
    assert_healthy(server)


def test_streams_beyond_the_limit_are_told_to_come_back_later(server):
    from contextlib import ExitStack

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from emotion_recognition.server import MAX_STREAMS

    with ExitStack() as open_streams:
        for _ in range(MAX_STREAMS):
            open_streams.enter_context(connect(stream_url(server), open_timeout=TIMEOUT_S))
        with connect(stream_url(server), open_timeout=TIMEOUT_S) as one_too_many:
            with pytest.raises(ConnectionClosed) as closed:
                one_too_many.recv(TIMEOUT_S)
    assert closed.value.rcvd.code == 1013 and "try again later" in closed.value.rcvd.reason


def test_another_sites_page_cannot_open_a_stream(server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as refused:
        connect(stream_url(server), origin="http://example.com", open_timeout=TIMEOUT_S)
    assert refused.value.response.status_code == 403


def test_a_failure_inside_is_a_500_with_a_message_and_the_traceback_stays_in_the_log(tmp_path, astronaut_png):
    setup = ("from emotion_recognition.recognizer import EmotionRecognizer\n"
             "def fail(self, frame):\n    raise RuntimeError('a bug on purpose')\n"
             "EmotionRecognizer.detect = fail")
    with running_server(tmp_path, setup=setup, workers=1) as broken:
        answer = post_image(broken, astronaut_png.read_bytes())
        assert "internal error" in assert_error(answer, 500)
        assert "a bug on purpose" not in json.dumps(answer[2])
        assert_healthy(broken)
    log = broken.log.read_text()
    assert "Traceback" in log and "a bug on purpose" in log


# --- Under load, HTTPS, and errors at start ------------------------------------------------------------
def test_beyond_the_queue_requests_get_503_and_the_server_goes_on(tmp_path, astronaut_png):
    photo = astronaut_png.read_bytes()
    clients = 8
    with running_server(tmp_path, workers=1, queue=0, queue_wait_s=0) as busy:
        start = Barrier(clients)

        def client(_):
            start.wait()
            return post_image(busy, photo)

        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(client, range(clients)))
        statuses = sorted(status for status, _, _ in answers)
        assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}, statuses
        refused = next(answer for answer in answers if answer[0] == 503)
        assert "busy" in assert_error(refused, 503)
        assert int(refused[1]["retry-after"]) >= 1
        assert post_image(busy, photo)[0] == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_https_with_a_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with running_server(tmp_path, certfile=str(cert), keyfile=str(key), workers=1) as secure:
        assert secure.scheme == "https"
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        connection = http.client.HTTPSConnection(secure.host, secure.port, timeout=TIMEOUT_S, context=context)
        connection.request("GET", "/healthz")
        assert json.loads(connection.getresponse().read())["status"] == "ok"
        connection.close()


def test_without_the_extra_the_error_says_what_to_install():
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "from emotion_recognition.errors import UserError\n"
            "try:\n    import emotion_recognition.server\nexcept UserError as error:\n    print(error)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=STARTUP_S)
    assert result.returncode == 0, result.stderr
    assert "pip install '.[serve]'" in result.stdout and "fastapi" in result.stdout


@pytest.mark.parametrize("options, words", [
    ({"keyfile": "key.pem"}, "certfile"),
    ({"certfile": "missing.pem"}, "not a file"),
    ({"max_upload_mb": 0}, "max_upload_mb"),
    ({"port": 70000}, "port"),
    ({"workers": 0}, "workers"),
])
def test_options_that_cannot_work_are_user_errors(options, words):
    from emotion_recognition.server import serve

    with pytest.raises(UserError, match=words):
        serve(**options)


def test_a_busy_port_is_a_user_error():
    from emotion_recognition.server import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(UserError, match="choose another port"):
            serve(port=taken.getsockname()[1])
