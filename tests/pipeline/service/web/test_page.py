"""The web page in a real browser (conftest: chromium through Selenium, the service on a real
socket, key required). The tests run in file order on one page and one service, as a user
would: key, search, play, photo search, ask, index, ask across the index, then a restart.
Screenshots go to the module's tmp dir (printed)."""

from __future__ import annotations

import pytest
from PIL import Image
from skimage import data

from tests.conftest import PHOTO_SCENES
from tests.pipeline.service.test_http import running
from tests.pipeline.service.web.conftest import KEY, XSS_NAME

pytestmark = pytest.mark.slow

WAIT_S = 90


def wait(driver, condition, what, timeout=WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: condition(d), message=f"timed out waiting for {what}")


def by_css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def scene_span(photo):
    start = PHOTO_SCENES.index(photo) * 5.0
    return start, start + 5.0


def loaded_thumbnails(driver, selector):
    """Images under selector whose blob: picture has loaded."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].filter("
        "i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0).length", selector)


def search(driver, text):
    box = one(driver, "#search-text")
    box.clear()
    if text:
        box.send_keys(text)
    driver.execute_script("document.getElementById('results').replaceChildren()")
    one(driver, "#search-button").click()
    wait(driver, lambda d: by_css(d, "#results .hit"), "search results")
    return by_css(driver, "#results .hit")


def player_position(driver):
    return driver.execute_script(
        "const p = document.getElementById('player');"
        "return {time: p.currentTime, ready: p.readyState, src: p.currentSrc};")


def assert_seeks_to(driver, start):
    wait(driver, lambda d: player_position(d)["ready"] >= 1
         and abs(player_position(d)["time"] - start) < 0.3, f"the player at {start:.2f} s")


def test_the_key_is_asked_once_then_search_shows_thumbnails(browser, site, shots):
    browser.get(site["url"])
    wait(browser, lambda d: "API key" in one(d, "#key-status").text, "the key prompt")
    one(browser, "#api-key").send_keys(KEY)
    one(browser, "#save-key").click()
    wait(browser, lambda d: one(d, "#key-status").text == "key accepted", "the key accepted")
    assert KEY not in browser.current_url
    hits = search(browser, "coffee")
    wait(browser, lambda d: loaded_thumbnails(d, "#results .hit img") == len(hits), "thumbnails")
    assert len(hits) >= 5
    first = hits[0]
    assert first.find_element("css selector", ".name").text == "photos.mp4"
    assert first.find_element("css selector", ".time").text.count(":") == 2  # m:ss.s - m:ss.s
    assert first.find_element("css selector", ".score").text.startswith("score 0.")
    browser.save_screenshot(str(shots / "1-search.png"))
    browser.refresh()  # entered once: the page keeps it
    wait(browser, lambda d: one(d, "#key-status").text == "key accepted", "the key kept")


def test_clicking_a_result_plays_from_the_clip_start(browser, site, shots):
    hits = search(browser, "coffee")
    target = max(hits, key=lambda hit: float(hit.get_attribute("data-start")))
    start = float(target.get_attribute("data-start"))
    assert start > 0
    target.click()
    assert_seeks_to(browser, start)
    position = player_position(browser)
    assert "/v1/media/t/" in position["src"] and KEY not in position["src"]
    other = min(hits, key=lambda hit: float(hit.get_attribute("data-start")))
    other.click()
    assert_seeks_to(browser, float(other.get_attribute("data-start")))
    browser.save_screenshot(str(shots / "2-played.png"))


def test_a_photo_upload_finds_its_clip(browser, site, shots, tmp_path):
    image = data.coffee()
    h, w = image.shape[:2]
    photo = tmp_path / "my coffee.jpg"
    Image.fromarray(image[h // 10: h - h // 10, w // 10: w - w // 10]).save(photo, quality=85)
    one(browser, "#search-image").send_keys(str(photo))
    wait(browser, lambda d: "my coffee.jpg" in one(d, "#image-label").text, "the photo chosen")
    first = search(browser, "")[0]
    start, end = scene_span("coffee")
    assert start - 0.5 <= float(first.get_attribute("data-start")) < end
    wait(browser, lambda d: loaded_thumbnails(d, "#results .hit img") > 0, "thumbnails")
    browser.save_screenshot(str(shots / "3-photo-search.png"))
    one(browser, "#clear-image").click()


def test_an_evidence_only_ask_shows_segments_that_seek_the_player(browser, site, shots):
    from selenium.webdriver.support.ui import Select

    wait(browser, lambda d: len(Select(one(d, "#ask-video")).options) >= 2, "the indexed videos")
    Select(one(browser, "#ask-video")).select_by_visible_text("photos.mp4")
    one(browser, "#ask-question").send_keys("Where is the cup of coffee?")
    one(browser, "#ask-budget").send_keys("256")
    one(browser, "#ask-button").click()
    wait(browser, lambda d: by_css(d, ".ask-job .segment"), "evidence segments")
    job = one(browser, ".ask-job")
    assert "Evidence only" in job.find_element("css selector", ".evidence-only").text
    assert job.find_element("css selector", "h3").text == "photos.mp4: Where is the cup of coffee?"
    segments = by_css(browser, ".ask-job .segment")
    wait(browser, lambda d: loaded_thumbnails(d, ".ask-job .segment img") == len(segments),
         "evidence thumbnails")
    assert "of 256 visual tokens" in job.text
    numbers = [seg.find_element("css selector", ".number").text for seg in segments]
    assert numbers == [f"[{n}]" for n in range(1, len(segments) + 1)]  # none cited: no answer
    last = segments[-1]
    start = float(last.get_attribute("data-start"))
    assert 0 <= start <= 25.0 and ":" in last.find_element("css selector", ".time").text
    last.click()
    assert_seeks_to(browser, start)
    browser.save_screenshot(str(shots / "4-ask.png"))


def test_indexing_a_folder_and_a_tag_like_file_name_stays_text(browser, site, shots):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.support.ui import Select

    path = one(browser, "#index-path")
    path.send_keys("/etc")
    one(browser, "#index-button").click()
    wait(browser, lambda d: "/etc: path is outside the allowed media roots" in
         one(d, "#index-jobs").text, "the refusal of a folder outside the media roots")
    path.clear()
    path.send_keys(str(site["incoming"]))
    one(browser, "#index-button").click()
    wait(browser, lambda d: by_css(d, ".index-job .summary"), "the index job's summary")
    assert one(browser, ".index-job .summary").text.startswith("1 indexed")
    assert one(browser, ".index-job progress").get_attribute("value") == "1"
    jobs = site["api"].get("/v1/jobs", headers={"X-API-Key": KEY}).json()["jobs"]
    progress = {job["kind"]: job["progress"] for job in jobs}  # each job's last step, kept
    assert progress["index"] == {"stage": "index", "done": 1, "total": 1,
                                 "video": str(site["incoming"] / XSS_NAME)}
    assert progress["ask"]["stage"] == "ingest"
    assert progress["ask"]["done"] == progress["ask"]["total"] >= 1
    hits = search(browser, "red")
    names = [hit.find_element("css selector", ".name").text for hit in hits]
    assert XSS_NAME in names
    options = [o.text for o in Select(one(browser, "#ask-video")).options]
    assert XSS_NAME in options
    hits[names.index(XSS_NAME)].click()
    wait(browser, lambda d: one(d, "#now-playing").text.startswith(f"{XSS_NAME} at "),
         "the player naming the file")
    # Rendered as text: no element was made from the name, and no script ran.
    assert browser.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    browser.save_screenshot(str(shots / "5-index-and-name.png"))


def test_asking_all_indexed_videos_asks_across_the_index(browser, site, shots):
    from selenium.webdriver.support.ui import Select

    Select(one(browser, "#ask-video")).select_by_index(0)  # all indexed videos
    question = one(browser, "#ask-question")
    question.clear()
    question.send_keys("a red theatre curtain")
    budget = one(browser, "#ask-budget")
    budget.clear()
    budget.send_keys("1024")  # room for both videos' evidence
    browser.execute_script("document.getElementById('ask-jobs').replaceChildren()")
    one(browser, "#ask-button").click()
    wait(browser, lambda d: by_css(d, ".ask-job .segment"), "evidence across the index")
    job = one(browser, ".ask-job")
    assert job.find_element("css selector", "h3").text == "all indexed videos: a red theatre curtain"
    segments = by_css(browser, ".ask-job .segment")
    xss_video = str(site["incoming"] / XSS_NAME)
    videos = [segment.get_attribute("data-video") for segment in segments]
    assert set(videos) <= {str(site["library"] / "photos.mp4"), xss_video}
    assert xss_video in videos, videos
    chosen = segments[videos.index(xss_video)]
    if len(set(videos)) > 1:  # segments of several videos each name theirs, as text
        assert chosen.find_element("css selector", ".name").text == XSS_NAME
    chosen.click()
    wait(browser, lambda d: one(d, "#now-playing").text.startswith(f"{XSS_NAME} at "),
         "the player on the segment's own video")
    assert_seeks_to(browser, float(chosen.get_attribute("data-start")))
    browser.save_screenshot(str(shots / "6-ask-all.png"))


def test_the_jobs_list_survives_a_restart(browser, site, shots):
    site["server"].__exit__(None, None, None)
    site["server"] = running(site["cfg"], site["port"])
    site["api"] = site["server"].__enter__()
    browser.refresh()
    wait(browser, lambda d: len(by_css(d, "#jobs tbody tr")) >= 2, "the jobs table")
    rows = {row.find_element("css selector", "td:nth-child(2)").text: row
            for row in by_css(browser, "#jobs tbody tr")}
    assert set(rows) == {"ask", "index"}
    assert len(by_css(browser, "#jobs tbody tr")) == 3  # an ask, an index, an ask of them all
    assert {row.get_attribute("data-status") for row in by_css(browser, "#jobs tbody tr")} == {
        "succeeded"}
    browser.execute_script("document.getElementById('ask-jobs').replaceChildren()")
    rows["ask"].find_element("css selector", "button").click()
    wait(browser, lambda d: by_css(d, ".ask-job .segment"), "the ask job's evidence again")
    browser.save_screenshot(str(shots / "7-after-restart.png"))


def test_a_summary_shows_its_chapters_as_a_timeline_that_plays_them(browser, site, shots):
    from selenium.webdriver.support.ui import Select

    Select(one(browser, "#summary-video")).select_by_visible_text("photos.mp4")
    one(browser, "#summary-button").click()
    wait(browser, lambda d: by_css(d, ".summary-job .chapter-part"), "the chapter timeline")
    summary = one(browser, ".summary-job")
    assert summary.find_element("css selector", "h3").text == "summary of photos.mp4"
    assert "Extractive" in summary.find_element("css selector", ".evidence-only").text
    jobs = site["api"].get("/v1/jobs?limit=1", headers={"X-API-Key": KEY}).json()["jobs"]
    result = jobs[0]["result"]
    chapters = result["chapters"]
    assert jobs[0]["kind"] == "summarize" and len(chapters) >= 3
    parts = by_css(browser, ".summary-job .chapter-part")
    assert len(parts) == len(chapters)
    # each part as wide as its chapter is long (the bar's gaps and a part's least width aside)
    widths = [part.size["width"] for part in parts]
    for width, chapter in zip(widths, chapters):
        share = (chapter["end"] - chapter["start"]) / result["duration"]
        assert abs(width / sum(widths) - share) < 0.06, (widths, chapters)
    assert parts[1].get_attribute("aria-label").startswith("Chapter 2: ")
    wait(browser, lambda d: loaded_thumbnails(d, ".summary-job .chapter img") == len(chapters),
         "the chapter thumbnails")
    parts[2].click()
    assert_seeks_to(browser, chapters[2]["start"])
    by_css(browser, ".summary-job .chapter")[1].click()
    assert_seeks_to(browser, chapters[1]["start"])
    exports = {button.get_attribute("data-format"): button
               for button in by_css(browser, ".summary-job .exports .download")}
    assert set(exports) == {"vtt", "ffmetadata", "youtube", "md"}
    exports["vtt"].click()
    status = summary.find_element("css selector", ".exports + .status")
    wait(browser, lambda d: status.text == "downloaded photos.chapters.vtt", "the chapters saved")
    clips = by_css(browser, ".summary-job .highlights .download")
    assert len(clips) == len(result["highlights"]) > 0
    clips[0].click()
    first = result["highlights"][0]
    wait(browser, lambda d: status.text == f"downloaded photos_{first['start']:g}-{first['end']:g}.mp4",
         "a highlight's clip saved")
    browser.save_screenshot(str(shots / "8-summary.png"))


def test_a_search_result_downloads_its_clip(browser, site, shots):
    hits = search(browser, "coffee")
    card = hits[0].find_element("xpath", "..")
    card.find_element("css selector", ".download").click()
    start = float(hits[0].get_attribute("data-start"))
    wait(browser, lambda d: one(d, "#search-status").text.startswith("downloaded photos_"),
         "the clip saved")
    assert f"_{start:g}-" in one(browser, "#search-status").text
