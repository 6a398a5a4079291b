"""The decoder interface and what every backend shares.

Semantics (identical for every backend):
- A timestamp t (seconds, on the video's PTS timeline) selects the frame whose display interval
  [pts_i, pts_i+1) contains t; t before the first frame selects the first frame, t at or after
  the end selects the last one. This is exact on variable-frame-rate video because it uses every
  frame's real PTS from the packet scan (vidsift.core.probe.scan_video).
- size=(height, width) resizes exactly; max_side=N shrinks so the longest side is N keeping the
  aspect ratio (never enlarges); at most one of them. Sizes are of the displayed (rotated) image.
  With size, a frame more elongated than the VLM takes (core.vision.MAX_ASPECT_RATIO) is
  letterboxed as the plan sized it: its pixels are scaled to core.vision.content_size and centred
  between black bars (core.images.pad_centred), so the image is still exactly height x width.
- Every Frame has the container's PTS in seconds and its index in presentation order, and its
  image is RGB uint8 (H, W, 3) with the display rotation applied.
- sample() targets start + k/fps for k = 0, 1, ... while < end; when several targets fall in one
  frame's interval (fps above the video's rate) that frame is returned once, so the result is
  ascending, free of duplicates and may hold fewer frames than targets. frames_at() instead returns
  exactly one frame per timestamp, in the order given (repeats allowed).
- A request that needs frames past the break of a truncated file raises CorruptVideoError with
  readable_until; requests inside the readable part succeed.

A backend implements two primitives over the scan (decode these frame indices; decode every
keyframe); the five public methods are built here on top of them, once.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np

from vidsift.core.errors import UnsupportedVideoError
from vidsift.core.images import pad_centred
from vidsift.core.probe import DEFAULT_MAX_PIXELS, StreamScan, scan_video
from vidsift.core.sources import is_url
from vidsift.core.types import Frame
from vidsift.core.vision import content_size


@runtime_checkable
class Decoder(Protocol):
    name: str

    def keyframes(self, path: str, max_side: int | None = None) -> list[Frame]: ...

    def frames_at(
        self, path: str, timestamps, size: tuple[int, int] | None = None,
        max_side: int | None = None,
    ) -> list[Frame]: ...

    def sample(
        self, path: str, fps: float, size: tuple[int, int] | None = None,
        max_side: int | None = None, start: float | None = None, end: float | None = None,
    ) -> list[Frame]: ...

    def clip(
        self, path: str, start: float, end: float, fps: float,
        size: tuple[int, int] | None = None, max_side: int | None = None,
    ) -> list[Frame]: ...

    def coarse(
        self, path: str, max_side: int, max_gap_s: float, fill_fps: float,
        start: float | None = None, end: float | None = None,
    ) -> list[Frame]: ...


def output_size(
    display_hw: tuple[int, int], size: tuple[int, int] | None, max_side: int | None
) -> tuple[int, int]:
    """(height, width) of returned images for a displayed size display_hw."""
    if size is not None and max_side is not None:
        raise ValueError("give at most one of size and max_side")
    if size is not None:
        height, width = int(size[0]), int(size[1])
        if height <= 0 or width <= 0:
            raise ValueError(f"size must be positive (height, width), got {size}")
        return height, width
    height, width = display_hw
    if max_side is None or max(height, width) <= max_side:
        return height, width
    if max_side <= 0:
        raise ValueError(f"max_side must be positive, got {max_side}")
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def coded_size(out_hw: tuple[int, int], rotation: int) -> tuple[int, int]:
    """(height, width) to scale the decoded (unrotated) image to, so rotating gives out_hw."""
    return (out_hw[1], out_hw[0]) if rotation in (90, 270) else out_hw


def rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate an (H, W, 3) image clockwise by rotation degrees (a multiple of 90)."""
    if rotation % 360 == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90)))


def sample_times(scan: StreamScan, fps: float, start: float | None, end: float | None) -> np.ndarray:
    """Targets start + k/fps, k = 0, 1, ... while < end (defaults: the video's first PTS, end)."""
    if not fps or fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"fps must be positive, got {fps}")
    start = scan.start_time if start is None else max(float(start), scan.start_time)
    end = scan.end_time if end is None else min(float(end), scan.end_time)
    if end <= start:
        return np.empty(0, dtype=np.float64)
    count = int(math.ceil((end - start) * fps - 1e-9))
    return start + np.arange(count, dtype=np.float64) / fps


def gap_fill_times(key_times: np.ndarray, end_time: float, max_gap_s: float, fill_fps: float) -> np.ndarray:
    """Times at fill_fps strictly inside every gap longer than max_gap_s between consecutive
    keyframes (and between the last keyframe and the end), seconds ascending."""
    if fill_fps <= 0 or max_gap_s <= 0:
        raise ValueError("max_gap_s and fill_fps must be positive")
    bounds = np.append(key_times, end_time)
    fills: list[np.ndarray] = []
    step = 1.0 / fill_fps
    for left, right in zip(bounds[:-1], bounds[1:]):
        if right - left > max_gap_s:
            count = int(math.ceil((right - left) / step - 1e-9))
            fills.append(left + step * np.arange(1, count))
    return np.concatenate(fills) if fills else np.empty(0, dtype=np.float64)


class BaseDecoder:
    """Public methods over two backend primitives; subclasses set `name` and implement
    _decode_indices and _decode_keyframes."""

    name = "base"
    reads_urls = False  # whether the backend opens videos behind URLs (core.sources) in place

    def __init__(self, threads: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.threads = int(threads)
        self.max_pixels = int(max_pixels)

    # --- primitives -----------------------------------------------------------------------
    def _decode_indices(self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        """Frames for the given presentation indices (unique, ascending), in that order."""
        raise NotImplementedError

    def _decode_keyframes(self, scan: StreamScan, keys: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        """The keyframes at presentation indices `keys` (ascending, consecutive keyframes of the
        stream), without decoding the frames between them."""
        return self._decode_indices(scan, keys, out_hw)

    def _decode_near(self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        """For the coarse pass: a frame at or shortly after each wanted index (each returned
        Frame still carries its own exact PTS and index). A backend that can skip work for this
        overrides it; the default decodes exactly."""
        return self._decode_indices(scan, indices, out_hw)

    # --- shared helpers -------------------------------------------------------------------
    def _scan(self, path) -> StreamScan:
        if not self.reads_urls and is_url(path):
            raise UnsupportedVideoError(
                str(path), f"decode.backend={self.name} reads local files only; pyav (the "
                           "default) reads URLs in place")
        return scan_video(path, self.max_pixels)

    @staticmethod
    def _frame(scan: StreamScan, index: int, image: np.ndarray, rotated: bool = False) -> Frame:
        """A Frame for presentation index `index`; rotated=True when the backend already
        applied the display rotation."""
        if not rotated:
            image = rotate(image, scan.rotation)
        return Frame(image=image, pts=scan.time_of(index), index=int(index))

    def _indices(self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int],
                 letterbox: bool = False) -> list[Frame]:
        """Frames at `indices` as out_hw images; letterbox: out_hw is a planned VLM input size
        (size=), so an over-elongated frame is scaled to its content size and padded to it."""
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        if indices.size == 0:
            return []
        scan.check_readable(scan.time_of(int(indices[-1])))
        inner_hw = content_size(scan.display_size, out_hw) if letterbox else out_hw
        frames = self._decode_indices(scan, indices, inner_hw)
        if inner_hw == out_hw:
            return frames
        return [Frame(pad_centred(f.image, *out_hw), f.pts, f.index) for f in frames]

    # --- public interface -----------------------------------------------------------------
    def keyframes(self, path, max_side: int | None = None) -> list[Frame]:
        scan = self._scan(path)
        scan.check_readable(scan.end_time)
        return self._decode_keyframes(scan, scan.key_indices, output_size(scan.display_size, None, max_side))

    def frames_at(self, path, timestamps, size=None, max_side=None) -> list[Frame]:
        scan = self._scan(path)
        times = np.asarray(list(timestamps), dtype=np.float64)
        if times.size:
            scan.check_readable(float(times.max()))
        wanted = scan.indices_at(times)
        out_hw = output_size(scan.display_size, size, max_side)
        by_index = {f.index: f for f in self._indices(scan, wanted, out_hw, size is not None)}
        return [by_index[int(i)] for i in wanted]

    def sample(self, path, fps: float, size=None, max_side=None, start=None, end=None) -> list[Frame]:
        scan = self._scan(path)
        targets = sample_times(scan, fps, start, end)
        if targets.size:
            scan.check_readable(float(targets[-1]))
        return self._indices(scan, scan.indices_at(targets),
                             output_size(scan.display_size, size, max_side), size is not None)

    def clip(self, path, start: float, end: float, fps: float, size=None, max_side=None) -> list[Frame]:
        if end < start:
            raise ValueError(f"clip end {end} is before start {start}")
        return self.sample(path, fps, size=size, max_side=max_side, start=start, end=end)

    def coarse(self, path, max_side: int, max_gap_s: float, fill_fps: float,
               start: float | None = None, end: float | None = None) -> list[Frame]:
        """Every keyframe plus fill_fps samples inside keyframe gaps longer than max_gap_s (a
        fill may land a few frames after its target where the backend skips undecodable-cheaply
        frames; see _decode_near).

        start/end (seconds) restrict the pass to one shard: the keyframes in [start, end), the
        fills of the gaps they open, and only frames whose PTS lies in [start, end). With shard
        bounds at keyframes (core.shards.plan_shards) every gap lies inside one shard, so the
        shards' frames together are exactly the whole pass's, none missing or doubled.

        Filling a gap decodes from the keyframe that opens it, so that keyframe comes from the
        fill pass for free; the keyframe-only pass runs only over keyframes that open no filled
        gap. On streaming-style encodes every gap is filled."""
        scan = self._scan(path)
        first, stop = scan.index_range(start, end)
        scan.check_readable(scan.end_time if stop >= scan.frame_count else scan.time_of(stop - 1))
        out_hw = output_size(scan.display_size, None, max_side)
        all_keys = scan.key_indices
        keys = all_keys[(all_keys >= first) & (all_keys < stop)]
        if keys.size == 0:
            return []
        gap_ends = np.append(scan.times[all_keys], scan.end_time)
        after = np.searchsorted(all_keys, keys[-1], side="right")
        bounds = np.append(scan.times[keys], gap_ends[after])
        fill = scan.indices_at(gap_fill_times(bounds[:-1], bounds[-1], max_gap_s, fill_fps))
        fill = np.setdiff1d(fill, keys)
        opening = np.unique(keys[np.clip(np.searchsorted(keys, fill, side="right") - 1, 0, None)])
        by_index: dict[int, Frame] = {}
        if opening.size < keys.size:
            by_index.update((f.index, f) for f in self._decode_keyframes(scan, keys, out_hw))
        wanted = np.union1d(fill, opening)
        for frame in self._decode_near(scan, wanted, out_hw) if wanted.size else []:
            by_index.setdefault(frame.index, frame)
        return [by_index[i] for i in sorted(by_index) if first <= i < stop]
