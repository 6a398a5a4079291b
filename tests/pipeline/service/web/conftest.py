"""The browser tests' shared pieces: Debian's chromium, headless, driven by Selenium through
chromedriver, against the service on a real socket (key required). Each module gets its own
service and browser (module scope), so a module's tests run in file order on one page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.pipeline.service.test_http import _free_port, running
from tests.videos import make_scene_video
from vidsift.core.config import load_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without the background-networking flags chromium stalls on a closed network.
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1600")
KEY = "page-key-123"
XSS_NAME = "<img src=x onerror=alert(1)>.mp4"


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"no browser: {CHROMIUM} and {CHROMEDRIVER} are missing and could not be "
                    "installed (`make test` installs Debian's chromium and chromium-driver as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(photo_library, ray_cluster, tmp_path_factory):
    """The service over a copy of the photo library's index; media roots: the library and a
    folder whose incoming/ holds a video named like an HTML tag (indexed from the page)."""
    library, index_dir, overrides = photo_library
    work = tmp_path_factory.mktemp("web_site")
    shutil.copytree(index_dir, work / "index")
    incoming = work / "media" / "incoming"
    incoming.mkdir(parents=True)
    make_scene_video(incoming / XSS_NAME, ["smptebars", "color=c=red"], seconds=2)
    cfg = load_config("default", [
        *overrides, f"index.dir={work / 'index'}", f"serve.data_dir={work / 'svc'}",
        f"serve.media_roots=[{library},{work / 'media'}]", f"serve.api_key={KEY}",
        "vlm.model=none", "budget.tokens=256", "serve.workers=1",
        "summary.min_chapter_s=3",  # chapters as short as the library's 5 s scenes
    ])
    port = _free_port()
    server = running(cfg, port)
    state = {"url": f"http://127.0.0.1:{port}/", "cfg": cfg, "port": port, "server": server,
             "api": server.__enter__(), "library": library, "incoming": incoming}
    yield state
    state["server"].__exit__(None, None, None)


@pytest.fixture(autouse=True)
def no_script_errors(request):
    """A test on the page ends with no error in its console but the refusals the page expects
    (the 401 before the key is entered, a 403 the test provokes)."""
    yield
    if "browser" not in request.fixturenames:
        return
    errors = [entry["message"] for entry in request.getfixturevalue("browser").get_log("browser")
              if entry["level"] == "SEVERE" and not any(
                  f"status of {status}" in entry["message"] for status in (401, 403))]
    assert not errors
