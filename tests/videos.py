"""Test videos generated with ffmpeg's lavfi sources, so tests never depend on downloaded media.

The "coded" video shows its own frame index on every frame: the top half is CODE_BITS vertical
bars, bar i white when bit i of the frame index is set; the bottom half is dark grey. The code
survives H.264 compression and downscaling to ~48 px wide, so a test reads back exactly which
frame a decoder returned.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

CODE_BITS = 12  # frames 0..4095


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def run_ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; raise with its stderr when it fails."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}\n{proc.stderr}")


def code_filter(width: int, height: int, fps: float) -> str:
    """A lavfi source graph whose frame N shows N as CODE_BITS bars (see module doc)."""
    lum = (
        f"if(lt(Y,H/2),255*mod(floor(N/pow(2,floor(X*{CODE_BITS}/W))),2),48)"
    )
    return f"color=c=black:s={width}x{height}:r={fps},format=yuv420p,geq=lum='{lum}':cb=128:cr=128"


def make_coded_video(
    path: Path,
    n_frames: int = 250,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
    gop: int | None = 25,
    output_args: tuple[str, ...] = (),
    video_filter: str | None = None,
) -> Path:
    """Write a coded video of n_frames frames at fps; size is (width, height).

    gop: keyframe interval in frames (None = the encoder's choice). output_args go before the
    output path (e.g. ('-metadata:s:v', 'rotate=90')); video_filter is applied after the code
    source (e.g. a setpts expression for variable frame rate).
    """
    if n_frames >= 2**CODE_BITS:
        raise ValueError(f"at most {2**CODE_BITS - 1} coded frames")
    width, height = size
    args = ["-f", "lavfi", "-i", code_filter(width, height, fps), "-frames:v", str(n_frames)]
    if video_filter:
        args += ["-vf", video_filter]
    args += ["-c:v", codec, "-pix_fmt", "yuv420p"]
    if codec == "libx264":
        args += ["-preset", "veryfast", "-crf", "18"]
    elif codec == "libvpx-vp9":
        args += ["-b:v", "0", "-crf", "30", "-deadline", "realtime", "-cpu-used", "8"]
    if gop is not None:
        args += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    run_ffmpeg(*args, *output_args, str(path))
    return path


def read_code(image: np.ndarray) -> int:
    """Frame index shown by a coded frame: image is (H, W, 3) uint8 RGB, any size >= ~48x32."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB, got {image.shape}")
    height, width = image.shape[:2]
    luma = image.astype(np.float32).mean(axis=2)
    band = luma[int(height * 0.1) : max(int(height * 0.4), int(height * 0.1) + 1)]
    value = 0
    for bit in range(CODE_BITS):
        left = (bit + 0.3) * width / CODE_BITS
        right = (bit + 0.7) * width / CODE_BITS
        cell = band[:, int(left) : max(int(right), int(left) + 1)]
        if cell.mean() > 128:
            value |= 1 << bit
    return value


def add_tone(video: Path, path: Path, seconds: float) -> Path:
    """A copy of video (video stream copied) with a 440 Hz AAC tone of `seconds` as its audio."""
    run_ffmpeg("-i", str(video), "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
               "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest",
               str(path))
    return path


def make_vfr_video(path: Path, n_frames: int = 60) -> Path:
    """Coded video whose frames 0-20 last 40 ms and later ones 40 ms more each step:
    frame N has PTS N/25 s for N <= 20, then N/25 + (N-20)/25 s (80 ms apart)."""
    return make_coded_video(
        path, n_frames=n_frames, fps=25, gop=25,
        video_filter="setpts='(N+if(gt(N,20),N-20,0))/25/TB'",
        output_args=("-fps_mode", "passthrough"),
    )


def make_rotated_video(source: Path, path: Path, degrees: int = 90) -> Path:
    """Copy of source (no re-encode) with a display matrix: players rotate it by `degrees`
    (ffmpeg's legacy rotate tag, which the mp4 muxer writes as the display matrix)."""
    run_ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v", f"rotate={degrees}", str(path))
    return path


def make_truncated_copy(source: Path, path: Path, keep: float = 0.5) -> Path:
    """The first `keep` share of source's bytes (source should be faststart: index up front)."""
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return path


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An AAC sine tone in an mp4/m4a container: a media file with no video stream."""
    run_ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", str(path))
    return path


def make_text_file(path: Path) -> Path:
    """Plain text under a video file name."""
    Path(path).write_text("this is not a video\n" * 20)
    return path


def make_empty_file(path: Path) -> Path:
    Path(path).write_bytes(b"")
    return path


def make_scene_cut_video(
    path: Path, cut_frames: tuple[int, ...], n_frames: int = 250, fps: float = 25
) -> Path:
    """Coded video (frame N shows N) cut into scenes at the frame indices cut_frames: each scene
    paints the bottom half its own grey, and a keyframe starts every scene (and frame 0) and no
    other frame, so the keyframe gaps are as irregular as the cuts."""
    cuts = sorted(set(cut_frames) - {0})
    boxes = [
        f"drawbox=x=0:y=ih/2:w=iw:h=ih/2:t=fill:color=0x{level:02x}{level:02x}{level:02x}"
        f":enable='gte(n,{cut})'"
        for cut, level in zip(cuts, range(80, 256, max(1, 170 // max(1, len(cuts)))))
    ]
    key_times = ",".join(f"{frame / fps:.6f}" for frame in [0, *cuts])
    return make_coded_video(
        path, n_frames=n_frames, fps=fps, gop=None,
        video_filter=",".join(boxes) or None,
        output_args=("-x264-params", f"keyint={n_frames + 1}:scenecut=0",
                     "-force_key_frames", key_times),
    )


def make_scene_video(
    path: Path, sources, size: str = "320x240", seconds: float = 5, fps: float = 10
) -> Path:
    """Concatenate scenes of `seconds` each: a source is a lavfi graph ("smptebars",
    "color=c=red") or a still image file (.png/.jpg) shown for the whole scene."""
    args, parts = [], []
    for i, source in enumerate(sources):
        if Path(str(source)).suffix.lower() in (".png", ".jpg", ".jpeg"):
            args += ["-loop", "1", "-t", str(seconds), "-framerate", str(fps), "-i", str(source)]
        else:
            options = f"s={size}:r={fps}"
            args += ["-f", "lavfi", "-t", str(seconds), "-i",
                     f"{source}:{options}" if "=" in source else f"{source}={options}"]
        parts.append(f"[{i}:v]scale={size.replace('x', ':')},setsar=1,format=yuv420p[v{i}]")
    graph = ";".join(parts) + ";" + "".join(f"[v{i}]" for i in range(len(sources)))
    graph += f"concat=n={len(sources)}:v=1:a=0[out]"
    run_ffmpeg(*args, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
               "-preset", "veryfast", "-g", str(int(5 * fps)), str(path))
    return path
