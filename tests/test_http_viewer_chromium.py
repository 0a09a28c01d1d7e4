"""The live viewer page in real headless Chromium (Debian chromium + chromium-driver, selenium).

CI needs: apt-get install -y chromium chromium-driver ; pip install selenium.
"""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest

from edge_runtime.frames import Frame, Prediction
from edge_runtime.service.http_server import make_http_observer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="chromium/chromedriver not installed (apt-get install chromium chromium-driver)",
)
TOKEN = "viewer-token-0123456789abcdef"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


# The page polls /stats.json once a second; on a loaded machine an update may take several.
PAGE_UPDATE_DEADLINE_S = 15.0
POLL_S = 0.3

AI = {"state": "ON", "detail": "40 ms"}  # the AI state the render loop reports (the test changes it)


def feed(obs, stop: threading.Event) -> None:
    """A 20 fps render loop: a white square moving over a dark frame."""
    i = 0
    while not stop.is_set():
        img = np.full((240, 320, 3), 30, np.uint8)
        x = 20 + (i * 4) % 240
        img[100:160, x : x + 60] = 255
        obs.on_frame(
            Frame(i, img, time.monotonic() - 0.01),
            Prediction(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32), 9.0),
            img,
            {"backend": "onnxruntime-cpu", "ai": dict(AI)},
        )
        i += 1
        time.sleep(0.05)


@pytest.fixture()
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(20)
    yield drv
    drv.quit()


def test_viewer_shows_stream_and_stats(browser):
    obs = make_http_observer("127.0.0.1", 0, TOKEN)
    stop = threading.Event()
    t = threading.Thread(target=feed, args=(obs, stop), daemon=True)
    t.start()
    try:
        browser.get(obs.url)  # no session: the login page instead of the viewer
        # Under load Chromium may return from get() before the body is rendered.
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, 10).until(lambda drv: "unauthorised" in drv.page_source)
        browser.find_element("id", "token").send_keys("wrong-" + TOKEN)
        browser.find_element("id", "login").click()
        WebDriverWait(browser, 10).until(lambda drv: "Wrong token" in drv.page_source)
        browser.find_element("id", "token").send_keys(TOKEN)
        browser.find_element("id", "login").click()
        WebDriverWait(browser, 10).until(lambda drv: drv.find_elements("id", "video"))
        # The token is in no URL and out of reach of page scripts (HttpOnly session cookie).
        assert TOKEN not in browser.current_url and "token" not in browser.current_url
        assert browser.execute_script("return document.cookie") == ""
        cookie = browser.get_cookie("sonomap_session")
        assert (
            cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
        )
        assert browser.execute_script("return document.getElementById('video').src").endswith("/stream.mjpg")
        deadline = time.time() + PAGE_UPDATE_DEADLINE_S
        while time.time() < deadline:
            natural = browser.execute_script(
                "const v=document.getElementById('video');return [v.naturalWidth, v.naturalHeight];"
            )
            fps = browser.find_element("id", "fps").text
            if natural == [320, 240] and fps not in ("-", "") and float(fps) > 0:
                break
            time.sleep(POLL_S)
        assert natural == [320, 240], "MJPEG stream did not render in the <img>"
        # The page shows the server's frame rate: frames are being rendered. How fast is the benchmarks' job.
        assert float(browser.find_element("id", "fps").text) > 0
        assert browser.find_element("id", "health").text == "ok"
        assert browser.find_element("id", "ai").text == "AI ON 40 ms"
        assert browser.find_element("id", "backend").text == "onnxruntime-cpu"
        assert float(browser.find_element("id", "lat-backend").text) == pytest.approx(9.0)
        # The stream is live: the page keeps updating the frame counter.
        first = int(browser.find_element("id", "frames").text)
        deadline = time.time() + PAGE_UPDATE_DEADLINE_S
        while int(browser.find_element("id", "frames").text) <= first and time.time() < deadline:
            time.sleep(POLL_S)
        assert int(browser.find_element("id", "frames").text) > first, "the page stopped updating"
        # And the picture is the moving square: capture it from a canvas.
        png_mean = browser.execute_script(
            "const v=document.getElementById('video'); const c=document.createElement('canvas');"
            "c.width=v.naturalWidth; c.height=v.naturalHeight; const g=c.getContext('2d');"
            "g.drawImage(v,0,0); const d=g.getImageData(0,100,320,60).data; let s=0;"
            "for (let i=0;i<d.length;i+=4) s+=d[i]; return s/(d.length/4);"
        )
        assert 30 + 10 < png_mean < 255  # the white square is in that band, the rest is dark
        AI.update(
            state="STALLED", detail="2.5 s"
        )  # the AI hangs, frames flow on: health flips, page says why
        deadline = time.time() + PAGE_UPDATE_DEADLINE_S
        while browser.find_element("id", "health").text == "ok" and time.time() < deadline:
            time.sleep(POLL_S)
        assert browser.find_element("id", "health").text == "AI stalled"
        assert browser.find_element("id", "ai").text == "AI STALLED 2.5 s"
        stop.set()
        t.join()
        obs.stats.clock = lambda: time.monotonic() + 5  # frames stopped: health flips
        deadline = time.time() + PAGE_UPDATE_DEADLINE_S
        while browser.find_element("id", "health").text != "no frames" and time.time() < deadline:
            time.sleep(POLL_S)
        assert browser.find_element("id", "health").text == "no frames"
    finally:
        stop.set()
        obs.close()
