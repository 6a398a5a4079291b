"""Search by image: scikit-image's sample photos shown in a generated video (the photo_library
fixture); a crop of a photo, as a JPEG, finds the clip that shows it - through search_clips,
`vidsift search --image` and POST /v1/search."""

import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from skimage import data
from typer.testing import CliRunner

from tests.conftest import PHOTO_SCENES
from vidsift.core.config import load_config
from vidsift.core.images import read_image
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.index import search_clips
from vidsift.pipeline.service.http import create_app

pytestmark = pytest.mark.slow

PHOTOS = ("chelsea", "coffee", "rocket")
SCENE_S = 5.0


def scene_span(photo):
    start = PHOTO_SCENES.index(photo) * SCENE_S
    return start, start + SCENE_S


def assert_shows(hit, photo):
    """The hit's clip lies within the photo's scene (half a coarse frame of slack)."""
    start, end = scene_span(photo)
    assert start - 0.5 <= hit.start < hit.end <= end + 0.5, (photo, hit.start, hit.end)


@pytest.fixture(scope="module")
def query_photos(tmp_path_factory):
    """Each photo cropped to its central 80% and saved as a JPEG: like, not equal to, the frame."""
    folder = tmp_path_factory.mktemp("query_photos")
    paths = {}
    for photo in PHOTOS:
        image = getattr(data, photo)()
        h, w = image.shape[:2]
        crop = image[h // 10: h - h // 10, w // 10: w - w // 10]
        paths[photo] = folder / f"{photo}.jpg"
        Image.fromarray(crop).save(paths[photo], quality=85)
    return paths


@pytest.fixture(scope="module")
def cfg(photo_library, tmp_path_factory):
    root, _, overrides = photo_library
    data_dir = tmp_path_factory.mktemp("search_service")
    return load_config("default", [*overrides, f"serve.data_dir={data_dir}",
                                   f"serve.media_roots=[{root}]", "vlm.model=none"])


@pytest.mark.parametrize("photo", PHOTOS)
def test_a_photo_finds_the_clip_that_shows_it(cfg, query_photos, photo):
    hits = search_clips(None, cfg, k=3, image=read_image(query_photos[photo]))
    assert_shows(hits[0], photo)
    assert hits[0].score == hits[0].visual_score and hits[0].text_score == 0.0
    assert hits[0].score > hits[1].score


def test_words_and_a_photo_fuse(cfg, query_photos):
    hits = search_clips("a cup of coffee", cfg, k=5, image=read_image(query_photos["coffee"]))
    assert_shows(hits[0], "coffee")
    weight = cfg.index.visual_weight
    for hit in hits:
        assert hit.text_score != 0.0
        assert hit.score == pytest.approx(weight * hit.visual_score + (1 - weight) * hit.text_score,
                                          abs=1e-6)
    with pytest.raises(Exception, match="text query, an image, or both"):
        search_clips(None, cfg)


def test_cli_search_by_image(photo_library, query_photos, tmp_path):
    root, index_dir, _ = photo_library
    runner = CliRunner()
    result = runner.invoke(app, ["search", "--image", str(query_photos["rocket"]), "--index-dir",
                                 str(index_dir), "--set", "embed.ocr=false", "--json", "-k", "2"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["image"] == str(query_photos["rocket"]) and payload["query"] is None
    first = payload["hits"][0]
    assert scene_span("rocket")[0] - 0.5 <= first["start"] < first["end"] <= scene_span("rocket")[1] + 0.5
    table = runner.invoke(app, ["search", "rocket", "--image", str(query_photos["rocket"]),
                                "--index-dir", str(index_dir), "--set", "embed.ocr=false"])
    # the table names the video by its file name, whole (the path is in --json)
    assert table.exit_code == 0 and "│ photos.mp4 " in table.stdout and str(root) not in table.stdout
    nothing = runner.invoke(app, ["search", "--index-dir", str(index_dir)])
    assert nothing.exit_code != 0 and "QUERY, an --image, or both" in nothing.output
    (tmp_path / "notes.jpg").write_text("not a photo")
    bad = runner.invoke(app, ["search", "--image", str(tmp_path / "notes.jpg"),
                              "--index-dir", str(index_dir)])
    assert bad.exit_code == 1 and "notes.jpg: not an image" in " ".join(bad.output.split())


def test_http_upload_finds_the_clip(cfg, query_photos):
    with TestClient(create_app(cfg)) as client:
        photo = query_photos["chelsea"].read_bytes()
        response = client.post("/v1/search", params={"k": 3}, content=photo,
                               headers={"Content-Type": "image/jpeg"})
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["image"] is True and payload["query"] is None
        first = payload["hits"][0]
        start, end = scene_span("chelsea")
        assert start - 0.5 <= first["start"] < first["end"] <= end + 0.5
        thumb = client.get(first["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
        fused = client.post("/v1/search", params={"q": "a cat", "k": 3}, content=photo).json()
        assert fused["query"] == "a cat" and fused["hits"][0]["text_score"] != 0.0
        garbage = client.post("/v1/search", content=b"GIF89a not really")
        assert garbage.status_code == 400
        assert garbage.json() == {"error": "uploaded image: not an image Pillow can read "
                                           "(JPEG, PNG, WebP, ...)"}
        empty = client.post("/v1/search", content=b"")
        assert empty.status_code == 400 and "empty" in empty.json()["error"]
        huge = client.post("/v1/search", content=b"\0" * (20 * 1024 * 1024 + 1))
        assert huge.status_code == 413 and "at most 20971520 bytes" in huge.json()["error"]
