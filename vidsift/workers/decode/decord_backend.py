"""decord backend (optional extra `decord`): random access by frame index.

decord applies the display matrix itself and scales inside its own FFmpeg filter graph, so it is
asked for the displayed size directly. Its memory use grows on
long videos and it can spin holding the GIL; run it in the ingest pool, whose timeout kills it.
"""

from __future__ import annotations

import numpy as np

from vidsift.core.errors import CorruptVideoError, UnsupportedVideoError
from vidsift.core.probe import StreamScan
from vidsift.core.types import Frame
from vidsift.workers.decode.base import BaseDecoder

BATCH = 16  # frames per get_batch call: bounds decord's intermediate copy


def _import_decord():
    try:
        import decord
    except ImportError as exc:  # the extra is not installed
        raise ImportError(
            "the 'decord' decode backend needs the decord package: pip install 'vidsift[decord]' "
            "(or choose decode.backend=pyav)"
        ) from exc
    return decord


class DecordDecoder(BaseDecoder):
    name = "decord"

    def __init__(self, threads: int = 0, **kwargs) -> None:
        self._decord = _import_decord()  # fail at construction, with the fix in the message
        super().__init__(threads=threads, **kwargs)

    def _decode_indices(self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        decord = self._decord
        height, width = out_hw  # decord rotates before it scales
        frames: list[Frame] = []
        try:
            reader = decord.VideoReader(
                scan.path, ctx=decord.cpu(0), width=width, height=height, num_threads=self.threads
            )
            if scan.hidden_frames:
                # decord counts the frames an edit list hides, and past the first keyframe of
                # such a file it returns frames from the wrong GOP (seen on stream-copy cuts).
                raise UnsupportedVideoError(
                    scan.path, f"{scan.hidden_frames} leading frames hidden by an edit list; "
                    "decord misplaces frames in such files: use decode.backend=pyav")
            if len(reader) < scan.frame_count:
                raise CorruptVideoError(
                    scan.path, f"decord sees {len(reader)} of {scan.frame_count} frames",
                    readable_until=scan.time_of(len(reader) - 1) if len(reader) else None,
                )
            for begin in range(0, indices.size, BATCH):
                chunk = indices[begin : begin + BATCH]
                images = reader.get_batch([int(i) for i in chunk]).asnumpy()
                frames.extend(self._frame(scan, int(i), image, rotated=True) for i, image in zip(chunk, images))
        except decord.DECORDError as exc:
            raise CorruptVideoError(
                scan.path, f"decord failed: {exc}",
                readable_until=frames[-1].pts if frames else None,
            ) from None
        return frames
