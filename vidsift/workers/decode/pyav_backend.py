"""PyAV (libav* in-process) backend: the default.

Only the frames a call returns are converted to RGB and resized (in swscale, one step); every
other frame is decoded and dropped. Keyframes come from one pass with skip_frame=NONKEY, which
hands the decoder only the sync samples.
"""

from __future__ import annotations

import numpy as np

from vidsift.core.errors import CorruptVideoError
from vidsift.core.probe import StreamScan, open_container, video_stream
from vidsift.core.types import Frame
from vidsift.workers.decode.base import BaseDecoder, coded_size

# A seek flushes the decoder and restarts at a keyframe; when the next wanted frame's keyframe is
# fewer than this many frames ahead, decoding through is cheaper.
SEEK_MIN_SKIP = 24
INTERPOLATION = "BILINEAR"  # the ffmpeg backend uses the same swscale flag


class PyAVDecoder(BaseDecoder):
    name = "pyav"
    reads_urls = True

    def _open(self, scan: StreamScan, skip_frame: str = "DEFAULT", deblock: bool = True):
        container = open_container(scan.path)
        stream = video_stream(container, scan.path)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        stream.codec_context.skip_frame = skip_frame
        if not deblock:
            stream.codec_context.options = {"skip_loop_filter": "all"}
        return container, stream

    @staticmethod
    def _index_of(scan: StreamScan, pts: int | None) -> int:
        """Presentation index of a decoded frame's PTS (the frame at or before it)."""
        if pts is None:
            return -1
        return int(np.searchsorted(scan.pts, pts, side="right")) - 1

    def _image(self, frame, coded_hw: tuple[int, int]) -> np.ndarray:
        return frame.to_ndarray(
            width=coded_hw[1], height=coded_hw[0], format="rgb24", interpolation=INTERPOLATION
        )

    def _decode_keyframes(self, scan: StreamScan, keys: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        import av

        coded_hw = coded_size(out_hw, scan.rotation)
        is_key = scan.is_key
        lo, hi = int(keys[0]), int(keys[-1])
        frames: dict[int, Frame] = {}
        container, stream = self._open(scan, skip_frame="NONKEY")
        # Packets stop at the first keyframe after the last wanted one and the decoder is then
        # drained: it holds its reorder delay in output frames, which in NONKEY mode are whole
        # GOPs, so decoding on until a frame past `hi` came out read two GOPs more than the
        # range (a remote shard's bytes: 295 KB for a 119 KB range of 1 s GOPs).
        stop_pts = int(scan.pts[hi])

        def packets():
            for packet in container.demux(stream):  # its last packet, at the end, flushes
                if packet.is_keyframe and packet.pts is not None and packet.pts > stop_pts:
                    yield None  # flush
                    return
                yield packet

        try:
            if lo > 0:
                container.seek(int(scan.pts[lo]), stream=stream, backward=True)
            for packet in packets():
                for frame in stream.decode(packet):
                    index = self._index_of(scan, frame.pts)
                    if lo <= index <= hi and is_key[index] and index not in frames:
                        frames[index] = self._frame(scan, index, self._image(frame, coded_hw))
        except av.error.FFmpegError as exc:
            last = max(frames) if frames else None
            raise CorruptVideoError(
                scan.path, f"keyframe decode failed: {exc}",
                readable_until=scan.time_of(last) if last is not None else None,
            ) from None
        finally:
            container.close()
        # H.264 refuses some non-IDR I-frames in NONKEY mode (no recovery point before them):
        # decode those few from a seek instead.
        missing = np.setdiff1d(keys, np.fromiter(frames, dtype=np.int64))
        if missing.size:
            for frame in self._decode_indices(scan, missing, out_hw):
                frames[frame.index] = frame
        return [frames[i] for i in sorted(frames)]

    def _decode_near(self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        """Two shortcuts that only the coarse pass may take, since its frames are only scored:
        - non-reference frames (most B-frames) are skipped, not decoded: about half the work on
          x264 encodes (1.6x faster on bbb.mp4); each wanted index gets the first decodable
          frame at or after it;
        - the in-loop deblocking filter is skipped (H.264/HEVC): ~15% less decode CPU; the error
          it leaves drifts until the next keyframe but stayed at 42 dB PSNR median, 35 dB worst,
          late in 10 s GOPs of the needle video, far below what scoring or OCR notices.
        Frames the VLM sees come from frames_at/clip, which decode exactly."""
        return self._decode_indices(scan, indices, out_hw, nearest=True)

    def _decode_indices(
        self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int], nearest: bool = False
    ) -> list[Frame]:
        import av

        coded_hw = coded_size(out_hw, scan.rotation)
        # The keyframe a wanted frame's decode must start from (the last one at or before it).
        starts = scan.decode_starts(indices)
        frames: list[Frame] = []
        position = -1  # presentation index of the last frame decoded
        wanted = 0
        decoded = None  # one frame iterator per seek: frames a packet yields are never dropped
        sought = -1  # keyframe index of the last seek; the demuxer may land on an earlier one
        container, stream = (
            self._open(scan, skip_frame="NONREF", deblock=False) if nearest else self._open(scan)
        )
        try:
            while wanted < indices.size:
                if decoded is None or (
                    starts[wanted] > sought and position >= 0 and starts[wanted] - position > SEEK_MIN_SKIP
                ):
                    sought = int(starts[wanted])
                    container.seek(scan.seek_pts(sought), stream=stream, backward=True)
                    decoded = container.decode(stream)
                    position = -1
                frame = next(decoded, None)
                if frame is None and nearest:
                    break  # the last targets fell on trailing frames that were skipped
                if frame is None:
                    raise CorruptVideoError(
                        scan.path, f"stream ended before frame {int(indices[wanted])}",
                        readable_until=frames[-1].pts if frames else scan.readable_until,
                    )
                index = self._index_of(scan, frame.pts)
                if index < 0:
                    continue
                position = index
                if nearest and wanted < indices.size and indices[wanted] <= index:
                    frames.append(self._frame(scan, index, self._image(frame, coded_hw)))
                    while wanted < indices.size and indices[wanted] <= index:
                        wanted += 1
                while wanted < indices.size and indices[wanted] == index:
                    frames.append(self._frame(scan, index, self._image(frame, coded_hw)))
                    wanted += 1
                if wanted < indices.size and index > indices[wanted]:
                    raise CorruptVideoError(
                        scan.path, f"frame {int(indices[wanted])} did not decode",
                        readable_until=frames[-1].pts if frames else None,
                    )
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(
                scan.path, f"decode failed: {exc}",
                readable_until=scan.time_of(position) if position >= 0 else None,
            ) from None
        finally:
            container.close()
        return frames
