"""In real headless Chromium: a page of another site open in the browser on the cart cannot hold the
viewer's MJPEG stream slots with ``<img>`` tags (loopback viewer without a token). Twelve images, six
through 127.0.0.1 and six through localhost (Chromium opens at most six connections per host), used to
take all 8 slots for as long as the page stayed open, and the operator's own viewer got 503."""

from __future__ import annotations

import threading
import urllib.request

import pytest
from loopback import serve_page
from test_http_guard import feed, wait_for_a_frame
from test_http_viewer_chromium import CHROMIUM, DRIVER, browser  # noqa: F401 (browser: a fixture)

from edge_runtime.service.http_server import MAX_STREAMS, make_http_observer

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="chromium/chromedriver not installed (apt-get install chromium chromium-driver)",
)
WAIT_S = 10
IMAGES_PER_HOST = 6
# The hostile page: its title counts the images that loaded (a stream answered) or failed (refused).
HOSTILE_PAGE = """<!doctype html><title>0</title><script>
let settled = 0;
const images = [];  // kept, so none is collected while it loads
const done = () => {{ settled += 1; document.title = String(settled); }};
for (const host of ["127.0.0.1", "localhost"]) {{
  for (let i = 0; i < {per_host}; i++) {{
    const img = new Image();
    img.onload = done;
    img.onerror = done;
    img.src = "http://" + host + ":{port}/stream.mjpg?" + i;
    images.push(img);
  }}
}}
</script>"""


def hostile_site(viewer_port: int):
    return serve_page(HOSTILE_PAGE.format(port=viewer_port, per_host=IMAGES_PER_HOST).encode())


def test_a_page_of_another_site_cannot_take_the_stream_slots(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    assert 2 * IMAGES_PER_HOST > MAX_STREAMS
    obs = make_http_observer("127.0.0.1", 0)  # loopback: no token needed
    stop = threading.Event()
    render = threading.Thread(target=feed, args=(obs, stop, (120, 160)), daemon=True)
    render.start()
    site = hostile_site(obs.port)
    try:
        wait_for_a_frame(obs)
        # served from 127.0.0.1 on another port: its images through 127.0.0.1 are same-site (another
        # application on this host, to which a SameSite=Strict cookie still goes), through localhost
        # cross-site
        browser.get(f"http://127.0.0.1:{site.server_address[1]}/")
        WebDriverWait(browser, WAIT_S).until(lambda d: d.title == str(2 * IMAGES_PER_HOST))
        with urllib.request.urlopen(f"http://127.0.0.1:{obs.port}/stream.mjpg", timeout=5) as own:
            assert own.status == 200  # the operator's viewer still gets a stream slot
    finally:
        site.shutdown()
        site.server_close()
        stop.set()
        render.join()
        obs.close()
