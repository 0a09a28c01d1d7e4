"""In real headless Chromium: a page of another site open in the browser on the cart cannot change
the session's study ID through a loopback viewer that needs no token (cross-site request forgery).
The hostile page is served from http://localhost:OTHER_PORT, another site than 127.0.0.1 to the
browser, and posts with fetch(..., {mode: 'no-cors'}), which needs no permission from the server."""

from __future__ import annotations

import pytest
from loopback import serve_page
from test_http_viewer_chromium import CHROMIUM, DRIVER, browser  # noqa: F401 (browser: a fixture)

from edge_runtime.biopsy.study_id import STUDY_ID
from edge_runtime.service.http_server import make_http_observer

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="chromium/chromedriver not installed (apt-get install chromium chromium-driver)",
)
WAIT_S = 10
STUDY_ID_BEFORE = "BX-0001"
FORGED = "BX-6666"
# The hostile page: its title says whether the POST reached a server that answered it.
HOSTILE_PAGE = """<!doctype html><title>loading</title><script>
fetch("http://127.0.0.1:{port}/study-id", {{method: "POST", mode: "no-cors", body: "{forged}"}})
  .then(() => {{ document.title = "answered"; }}, () => {{ document.title = "failed"; }});
</script>"""


@pytest.fixture()
def capturing():
    """The state a capture observer (--cases) gives the process: study IDs are taken."""
    STUDY_ID.enabled, STUDY_ID.value = True, STUDY_ID_BEFORE
    yield STUDY_ID
    STUDY_ID.enabled, STUDY_ID.value = False, None


def hostile_site(viewer_port: int):
    return serve_page(HOSTILE_PAGE.format(port=viewer_port, forged=FORGED).encode())


def test_a_page_of_another_site_cannot_set_the_study_id(browser, capturing):
    from selenium.webdriver.support.ui import WebDriverWait

    obs = make_http_observer("127.0.0.1", 0)  # loopback: no token needed
    site = hostile_site(obs.port)
    try:
        browser.get(f"http://localhost:{site.server_address[1]}/")
        WebDriverWait(browser, WAIT_S).until(lambda d: d.title != "loading")
        assert browser.title == "answered"  # the browser did send it, and the viewer answered
        assert capturing.value == STUDY_ID_BEFORE
    finally:
        site.shutdown()
        site.server_close()
        obs.close()
