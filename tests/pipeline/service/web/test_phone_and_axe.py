"""The web page on a phone and for every user: Chromium emulating a 375x812 phone (device
metrics, mobile viewport), then the desktop window. In each view (search, player and ask,
index, jobs) the page must not scroll sideways, every visible control must lie inside the
viewport's width and be the topmost thing at its centre (no control or panel drawn over it),
and axe-core (the npm package, `make axe`) must find no serious or critical violation.
The tests run in file order on one page (conftest: a service and browser of this module)."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import pytest

from tests.pipeline.service.web.conftest import KEY
from tests.pipeline.service.web.test_page import (
    by_css,
    loaded_thumbnails,
    one,
    search,
    wait,
)
from tests.videos import make_scene_video

pytestmark = pytest.mark.slow

PHONE = {"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True}
# axe-core from the npm registry (`make axe`): axe-selenium-python's wheel for Python 3.11
# bundles axe-core 3.1 (2018), which lacks many of the rules 4.x checks.
AXE_JS = Path(__file__).resolve().parents[4] / "build" / "axe" / "node_modules" / "axe-core" / \
    "axe.min.js"
SERIOUS = ("serious", "critical")

# Every visible control (shown, not zero-sized): where it lies in the document, and whether it
# is the topmost element at its centre once scrolled into view; each named by tag, id, class
# and text so a failure says which.
LAYOUT_JS = """
const width = arguments[0];
const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
  + (e.classList.length ? '.' + [...e.classList].join('.') : '')
  + (e.textContent.trim() ? ' "' + e.textContent.trim().slice(0, 30) + '"' : '');
const controls = [...document.querySelectorAll(
    'input, select, textarea, button, video, a[href], summary, [tabindex]')]
  .filter((e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
                   return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'; });
const problems = [];
const scrollWidth = document.scrollingElement.scrollWidth;
if (scrollWidth > width) problems.push(`the page is ${scrollWidth} px wide`);
const boxes = controls.map((e) => {
  e.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = e.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const top = document.elementFromPoint(x, y);
  if (top !== e && !e.contains(top)) problems.push(`${name(e)} is under ${top ? name(top) : 'nothing'}`);
  return {left: r.left + scrollX, right: r.right + scrollX, top: r.top + scrollY,
          bottom: r.bottom + scrollY};
});
scrollTo(0, 0);
boxes.forEach((b, i) => {
  if (b.left < 0 || b.right > width || b.top < 0)
    problems.push(`${name(controls[i])} lies past the edge: x ${b.left}..${b.right} of ${width}`);
  for (let j = i + 1; j < boxes.length; j++) {
    const o = boxes[j];
    const overlap = Math.min(b.right, o.right) - Math.max(b.left, o.left) > 0.5
      && Math.min(b.bottom, o.bottom) - Math.max(b.top, o.top) > 0.5;
    if (overlap && !controls[i].contains(controls[j]) && !controls[j].contains(controls[i]))
      problems.push(`${name(controls[i])} overlaps ${name(controls[j])}`);
  }
});
return problems;
"""

AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']})
  .then((result) => done(result.violations), (error) => done(String(error)));
"""


def layout_problems(driver, width):
    return driver.execute_script(LAYOUT_JS, width)


def serious_violations(driver):
    """axe-core's serious and critical violations of the page as it is: 'rule: target, ...'."""
    if not AXE_JS.is_file():
        pytest.skip(f"no axe-core: {AXE_JS} is missing (`make axe` installs it with npm)")
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        driver.execute_script(AXE_JS.read_text())
    violations = driver.execute_async_script(AXE_RUN_JS)
    assert isinstance(violations, list), violations
    return [f"{v['id']} ({v['impact']}): {v['help']}: "
            + ", ".join(" ".join(node["target"]) for node in v["nodes"])
            for v in violations if v["impact"] in SERIOUS]


def assert_fits(driver, width, view, shots):
    # The whole page, not only the viewport: a phone's view is a long column.
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True})
    (shots / f"{view}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
    assert layout_problems(driver, width) == [], view
    assert serious_violations(driver) == [], view


@pytest.fixture(scope="module")
def phone(browser, site):
    browser.set_script_timeout(60)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.get(site["url"])
    wait(browser, lambda d: "API key" in one(d, "#key-status").text, "the key prompt")
    one(browser, "#api-key").send_keys(KEY)
    one(browser, "#save-key").click()
    wait(browser, lambda d: one(d, "#key-status").text == "key accepted", "the key accepted")
    return browser


def test_the_page_says_what_it_is_and_labels_its_inputs(phone, site):
    assert phone.title == "vidsift: search, play and ask your videos"
    labels = phone.execute_script(
        "return arguments[0].map((id) => { const l = document.querySelector(`label[for=${id}]`);"
        "  return l && l.getBoundingClientRect().width > 0 ? l.textContent.trim() : null; })",
        ["search-text", "ask-video", "ask-question", "index-path"])
    assert labels == ["Search clips", "Video", "Question", "Folder or video to index"]
    # The media roots are named as a hint beside the path, not as a placeholder that reads as
    # if the field were filled in already.
    roots = [str(site["library"]), str(site["incoming"].parent)]
    wait(phone, lambda d: all(root in one(d, "#index-hint").text for root in roots),
         "the media roots named")
    assert one(phone, "#index-path").get_attribute("placeholder") == "a path under a media root"
    assert one(phone, "#index-path").get_attribute("aria-describedby") == "index-hint"


def test_the_search_view_fits_a_phone(phone, shots):
    hits = search(phone, "coffee")
    wait(phone, lambda d: loaded_thumbnails(d, "#results .hit img") == len(hits), "thumbnails")
    assert_fits(phone, PHONE["width"], "1-search", shots)


def test_the_player_and_ask_view_fit_a_phone_stacked(phone, shots):
    from selenium.webdriver.support.ui import Select

    by_css(phone, "#results .hit")[0].click()
    wait(phone, lambda d: " at " in one(d, "#now-playing").text, "the player naming the clip")
    wait(phone, lambda d: len(Select(one(d, "#ask-video")).options) >= 2, "the indexed videos")
    Select(one(phone, "#ask-video")).select_by_visible_text("photos.mp4")
    one(phone, "#ask-question").send_keys("Where is the cup of coffee?")
    one(phone, "#ask-budget").send_keys("256")
    one(phone, "#ask-button").click()
    wait(phone, lambda d: by_css(d, ".ask-job .segment"), "evidence segments")
    wait(phone, lambda d: loaded_thumbnails(d, ".ask-job .segment img")
         == len(by_css(d, ".ask-job .segment")), "evidence thumbnails")
    # One column: the search panel, then the player, then ask, each below the one before.
    panels = phone.execute_script(
        "return ['search-panel', 'player', 'ask-panel'].map((id) => {"
        "  const r = document.getElementById(id).getBoundingClientRect();"
        "  return [r.top + scrollY, r.bottom + scrollY]; })")
    assert all(upper[1] <= lower[0] for upper, lower in itertools.pairwise(panels)), panels
    assert_fits(phone, PHONE["width"], "2-ask", shots)


def test_an_index_job_with_a_broken_video_names_it_on_a_phone(phone, site, shots):
    mixed = site["incoming"].parent / "mixed"
    mixed.mkdir()
    make_scene_video(mixed / "bars.mp4", ["smptebars"], seconds=2)
    (mixed / "broken.mp4").write_text("not a video")
    path = one(phone, "#index-path")
    path.clear()
    path.send_keys(str(mixed))
    one(phone, "#index-button").click()
    wait(phone, lambda d: by_css(d, ".index-job .summary"), "the index job's summary")
    job = one(phone, ".index-job")
    assert job.find_element("css selector", ".summary").text.startswith("1 indexed")
    assert job.find_element("css selector", ".summary").text.endswith("1 failed")
    errors = [line.text for line in job.find_elements("css selector", ".error")]
    assert len(errors) == 1 and errors[0].startswith("broken.mp4: "), errors
    assert_fits(phone, PHONE["width"], "3-index", shots)


def test_the_jobs_view_fits_a_phone(phone, shots):
    wait(phone, lambda d: len(by_css(d, "#jobs tbody tr")) == 2, "the ask and index jobs")
    phone.execute_script("document.getElementById('jobs-panel').scrollIntoView()")
    assert_fits(phone, PHONE["width"], "4-jobs", shots)


def test_the_desktop_view_keeps_every_control_apart(phone, shots):
    phone.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    width = phone.execute_script("return window.innerWidth")
    assert width >= 1000
    assert_fits(phone, width, "5-desktop", shots)
