"""The viewer page's study-ID field in real headless Chromium: typing a pseudonym sets the
session's study ID (POST /study-id); a name is refused on the page and the ID stays as it was."""

from __future__ import annotations

import threading

import pytest
from test_http_viewer_chromium import CHROMIUM, DRIVER, browser, feed  # noqa: F401 (browser: a fixture)

from edge_runtime.biopsy.study_id import STUDY_ID
from edge_runtime.service.http_server import make_http_observer

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="chromium/chromedriver not installed (apt-get install chromium chromium-driver)",
)
WAIT_S = 10


@pytest.fixture()
def capturing():
    """The state a capture observer (--cases) gives the process: study IDs are taken."""
    STUDY_ID.enabled, STUDY_ID.value = True, "BX-0001"
    yield STUDY_ID
    STUDY_ID.enabled, STUDY_ID.value = False, None


def test_the_viewer_field_sets_the_study_id(browser, capturing):
    from selenium.webdriver.support.ui import WebDriverWait

    obs = make_http_observer("127.0.0.1", 0)  # loopback: no token needed
    stop = threading.Event()
    t = threading.Thread(target=feed, args=(obs, stop), daemon=True)
    t.start()
    try:
        browser.get(obs.url)
        field = WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element("id", "study-id"))
        WebDriverWait(browser, WAIT_S).until(lambda d: field.get_attribute("value") == "BX-0001")
        message = lambda: browser.find_element("id", "study-msg")  # noqa: E731
        field.clear()
        field.send_keys("Jane Doe")
        browser.find_element("css selector", "#study button").click()
        WebDriverWait(browser, WAIT_S).until(lambda d: "refused" in message().text)
        assert message().get_attribute("class") == "bad" and "Jane" not in message().text
        assert capturing.value == "BX-0001"
        field.clear()
        field.send_keys("BX-0002")
        browser.find_element("css selector", "#study button").click()
        WebDriverWait(browser, WAIT_S).until(lambda d: message().text == "study ID set")
        assert message().get_attribute("class") == "ok" and capturing.value == "BX-0002"
    finally:
        stop.set()
        t.join()
        obs.close()
