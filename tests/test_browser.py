"""The camera page in a real headless Chromium: a fake camera plays the astronaut's face, the page streams
it to a real server, and must show 'happy'. A dropped photo too.

Needs Debian's chromium (apt-get install chromium) and Playwright's Python package (pip install playwright);
Playwright drives the system's Chromium, so no browser is downloaded (never `playwright install`)."""

import os
import re
import shutil

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from test_server import running_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOWS_WITHIN_S = 30
FRAME_SIZE = (640, 480)
FPS, SECONDS = 10, 2        # the fake camera loops the clip
SCREENSHOT = os.environ.get("EMOTION_SCREENSHOT")  # where to keep a picture of the page, if anywhere

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright is not installed: pip install playwright")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM to its path)",
                allow_module_level=True)


def write_y4m(path, frames):
    """A Y4M video (what Chromium's fake camera plays) from BGR frames: 4:2:0 planes after a header."""
    width, height = FRAME_SIZE
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())  # Y, then U, then V


def face_frames(photo_path):
    """The astronaut's face, drifting slowly on a grey 640x480 background."""
    photo = cv2.imread(str(photo_path))
    x, y, w, h = ASTRONAUT_FACE
    face = cv2.resize(photo[y - 30:y + h + 30, x - 30:x + w + 30], (200, 220))
    for index in range(FPS * SECONDS):
        frame = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), 90, np.uint8)
        left = 180 + 4 * index
        frame[120:340, left:left + 200] = face
        yield frame


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory, astronaut_png):
    path = tmp_path_factory.mktemp("camera") / "astronaut.y4m"
    write_y4m(path, face_frames(astronaut_png))
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory, camera_clip):
    folder = tmp_path_factory.mktemp("browser")
    with running_server(folder, workers=2) as server, playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            folder / "profile", executable_path=CHROMIUM, headless=True, viewport={"width": 1280, "height": 900},
            args=["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-video-capture={camera_clip}", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run"])
        try:
            page = browser.new_page()
            problems = []
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{server.url}/")
            page.problems = problems
            page.screenshot_path = SCREENSHOT or folder / "page.png"
            yield page
        finally:
            browser.close()


# Locators, not wait_for_function: the page's Content-Security-Policy forbids evaluating strings, and stays on.
def test_the_camera_page_shows_happy(page):
    playwright_api.expect(page.locator("#emotions")).to_contain_text("happy", timeout=SHOWS_WITHIN_S * 1000)
    line = page.locator("#emotions li").first.text_content()
    assert line.startswith("face 1: happy"), line
    playwright_api.expect(page.locator("#fps")).to_have_text(re.compile(r"\d frames/s"))
    page.screenshot(path=page.screenshot_path)
    assert not page.problems, page.problems   # no script error, nothing blocked by the page's own policy


def test_a_chosen_photo_shows_happy(page, astronaut_png):
    page.set_input_files("#file", str(astronaut_png))
    playwright_api.expect(page.locator("#photo-emotions")).to_contain_text("happy", timeout=SHOWS_WITHIN_S * 1000)
    assert page.locator("#photo-emotions li").first.text_content() == "face 1: happy 91%"
    assert page.locator("#photo").is_visible()
    page.screenshot(path=page.screenshot_path, full_page=True)
    assert not page.problems, page.problems
