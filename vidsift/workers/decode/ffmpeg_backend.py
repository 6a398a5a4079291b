"""ffmpeg CLI backend: an ffmpeg process decodes and writes raw RGB frames to a pipe.

Exactness does not rely on ffmpeg's fps filter (which rounds timestamps its own way): the frames
are chosen here from the packet scan, ffmpeg keeps exactly those with a select filter on their
PTS (a binary search written as nested if(), so each frame costs O(log n) to test), rotates them
(autorotate), scales them (scale filter, same swscale flags as PyAV) and reports the PTS of every
frame it kept through showinfo, which is checked against what was asked for.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading

import numpy as np

from vidsift.core.errors import CorruptVideoError
from vidsift.core.probe import StreamScan
from vidsift.core.types import Frame
from vidsift.workers.decode.base import BaseDecoder

# A new ffmpeg process (input seek + start-up, ~30 ms) pays when the next wanted frame's keyframe
# is more than this many frames past the previous wanted frame.
NEW_PROCESS_MIN_SKIP = 96
_SHOWINFO = re.compile(r"\] n:\s*\d+ pts:\s*(-?\d+)")


def _select_expr(pts: np.ndarray) -> str:
    """An expression true exactly when the frame's PTS is one of `pts` (ascending ints)."""
    if pts.size == 1:
        return f"eq(pts,{int(pts[0])})"
    middle = pts.size // 2
    return f"if(lt(pts,{int(pts[middle])}),{_select_expr(pts[:middle])},{_select_expr(pts[middle:])})"


class FFmpegDecoder(BaseDecoder):
    name = "ffmpeg"

    def _run(self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int],
             skip_nonkey: bool = False, seek_index: int = 0) -> list[Frame]:
        """One ffmpeg process returning the frames at `indices` (those it decodes)."""
        height, width = out_hw
        graph = f"select='{_select_expr(scan.pts[indices])}',showinfo,scale={width}:{height}:flags=bilinear"
        with tempfile.NamedTemporaryFile("w", suffix=".ffgraph", delete=False) as script:
            script.write(graph)
        # A frame before the first keyframe (-1) decodes from the file's start.
        seek = max(0.0, scan.time_of(seek_index) - scan.start_time) if seek_index >= 0 else 0.0
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info"]
        cmd += ["-threads", str(self.threads)]
        if skip_nonkey:
            cmd += ["-skip_frame", "nokey"]
        if seek > 0:
            cmd += ["-noaccurate_seek", "-ss", f"{seek + 0.0005:.6f}"]
        cmd += ["-copyts", "-i", scan.path, "-map", "0:v:0", "-an", "-sn", "-dn",
                "-filter_script:v", script.name, "-fps_mode", "passthrough",
                "-frames:v", str(indices.size), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        stderr_lines: list[str] = []
        images: list[np.ndarray] = []
        frame_bytes = height * width * 3
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            reader = threading.Thread(
                target=lambda: stderr_lines.extend(
                    line.decode("utf-8", "replace") for line in proc.stderr
                ),
                daemon=True,
            )
            reader.start()
            while True:
                chunk = proc.stdout.read(frame_bytes)
                if len(chunk) < frame_bytes:
                    break
                images.append(np.frombuffer(chunk, dtype=np.uint8).reshape(height, width, 3))
            returncode = proc.wait()
            reader.join()
        finally:
            os.unlink(script.name)
        kept = [int(m.group(1)) for line in stderr_lines if (m := _SHOWINFO.search(line))]
        if returncode != 0 and not images:
            errors = [line.strip() for line in stderr_lines if "rror" in line][-3:]
            raise CorruptVideoError(scan.path, f"ffmpeg exited {returncode}: {' | '.join(errors)}")
        frames = []
        for pts, image in zip(kept, images):
            index = int(np.searchsorted(scan.pts, pts))
            if index < scan.frame_count and scan.pts[index] == pts:
                frames.append(self._frame(scan, index, image, rotated=True))  # autorotate
        return frames

    def _decode_indices(self, scan: StreamScan, indices: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        starts = scan.decode_starts(indices)
        # Split into runs; each run is one process seeking to its first frame's keyframe.
        breaks = np.flatnonzero(starts[1:] - indices[:-1] > NEW_PROCESS_MIN_SKIP) + 1
        frames: list[Frame] = []
        for run in np.split(np.arange(indices.size), breaks):
            wanted = indices[run]
            got = self._run(scan, wanted, out_hw, seek_index=int(starts[run[0]]))
            if len(got) != wanted.size or any(f.index != i for f, i in zip(got, wanted)):
                missing = np.setdiff1d(wanted, [f.index for f in got])
                raise CorruptVideoError(
                    scan.path, f"{missing.size} requested frame(s) did not decode, first {int(missing[0])}",
                    readable_until=got[-1].pts if got else None,
                )
            frames.extend(got)
        return frames

    def _decode_keyframes(self, scan: StreamScan, keys: np.ndarray, out_hw: tuple[int, int]) -> list[Frame]:
        frames = {f.index: f for f in self._run(scan, keys, out_hw, skip_nonkey=True,
                                                seek_index=int(keys[0]))}
        # Some I-frames are refused in nokey mode (see the PyAV backend); decode them normally.
        missing = np.setdiff1d(keys, np.fromiter(frames, dtype=np.int64))
        if missing.size:
            frames.update((f.index, f) for f in self._decode_indices(scan, missing, out_hw))
        return [frames[i] for i in sorted(frames)]
