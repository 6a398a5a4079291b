"""A video's audio track decoded with PyAV, resampled to 16 kHz mono, in bounded windows: at most
one window of samples (30 s = 1.9 MB of float32) plus one decoded frame is held at a time, never
the whole track. Each window ends at the quietest moment of its last CUT_SEARCH_S seconds, so a
boundary falls in a pause between words rather than through one (recognisers treat a window as
one utterance).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000  # what pocketsphinx's en-us model and Whisper's feature extractor expect
# a window quieter than this (RMS, dB below full scale) holds no speech: recognisers are not
# shown it (pocketsphinx hears words in digital silence; skipping also saves their time)
SILENCE_DBFS = -50.0
CUT_SEARCH_S = 2.0  # how far before a window's nominal end its cut may move to find a pause
_CUT_FRAME = SAMPLE_RATE // 50  # 20 ms energy frames
_CUT_SMOOTH = 5  # frames averaged (100 ms): a pause, not the gap inside one plosive


def quiet_cut(samples: np.ndarray, search: int) -> int:
    """Where to end a window of `samples` ((n,) float32): the end of the quietest 100 ms within
    the last `search` samples (energy in 20 ms frames, smoothed), the latest such place on ties
    so a window of silence keeps its full length. Returns an index in [n - search, n]."""
    n = len(samples)
    frames = min(search, n) // _CUT_FRAME
    if frames < _CUT_SMOOTH:
        return n
    tail = samples[n - frames * _CUT_FRAME:].reshape(frames, _CUT_FRAME)
    energy = np.square(tail, dtype=np.float64).mean(axis=1)
    smooth = np.convolve(energy, np.ones(_CUT_SMOOTH) / _CUT_SMOOTH, mode="valid")  # (frames - 4,)
    last_quietest = len(smooth) - 1 - int(np.argmin(smooth[::-1]))
    if last_quietest == len(smooth) - 1:
        return n  # the window already ends quietly
    # inside a pause: after the middle frame of the quietest run, clear of both words
    return n - frames * _CUT_FRAME + (last_quietest + _CUT_SMOOTH // 2 + 1) * _CUT_FRAME


class NoAudioError(ValueError):
    """The video has no audio stream."""


@dataclass(slots=True)
class AudioWindow:
    """start: seconds on the video's timeline of samples[0]; samples: (n,) float32 in [-1, 1] at
    SAMPLE_RATE, n <= window_s * SAMPLE_RATE."""

    start: float
    samples: np.ndarray

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / SAMPLE_RATE

    @property
    def loudness_dbfs(self) -> float:
        """RMS level in dB below full scale (-inf for digital silence)."""
        rms = float(np.sqrt(np.mean(np.square(self.samples, dtype=np.float64)))) if len(self.samples) else 0.0
        return 20 * np.log10(rms) if rms > 0 else float("-inf")


class AudioReader:
    """Iterate a video's first audio stream, or a stretch of it, as AudioWindows of window_s
    seconds (the last one shorter). Packets that fail to decode are skipped and counted in
    `bad_packets` after iterating, so a corrupt stretch costs its own seconds, not the track.
    Raises NoAudioError on open when there is no audio stream."""

    def __init__(self, path: str, window_s: float = 30.0) -> None:
        from vidsift.core.probe import open_media

        self.path = path
        self.window = round(window_s * SAMPLE_RATE)
        self.bad_packets = 0
        with open_media(path) as container:
            if not container.streams.audio:
                raise NoAudioError(f"{path}: no audio track")
            stream = container.streams.audio[0]
            seconds = stream.duration * stream.time_base if stream.duration else None
            if seconds is None and container.duration:
                seconds = container.duration / 1_000_000
            self.duration = float(seconds or 0.0)  # for progress; 0 when the container does not say

    def windows(self, start: float | None = None, end: float | None = None) -> Iterator[AudioWindow]:
        """The windows of [start, end) seconds on the video's timeline (None: from the track's
        first sample / to its last). With a start the demuxer seeks there, so a shard of a long
        video decodes its own stretch of audio, not the track before it."""
        import av

        from vidsift.core.probe import open_media

        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        cutter: _Windows | None = None
        with open_media(self.path) as container:
            stream = container.streams.audio[0]
            if start is not None and start > 0 and stream.time_base:
                # backward: land on or before start; the samples before it are dropped below
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    self.bad_packets += 1
                    continue
                for frame in frames:
                    if cutter is None:
                        cutter = _Windows(float(frame.time or 0.0), self.window, start, end)
                    for out in resampler.resample(frame):
                        yield from cutter.push(out.to_ndarray()[0])
                if cutter is not None and cutter.ended:
                    break
            if cutter is not None:
                for out in resampler.resample(None):
                    yield from cutter.push(out.to_ndarray()[0])
                yield from cutter.rest()


class _Windows:
    """Cuts a stream of sample runs, the first sample at `first` seconds, into windows of at most
    `size` samples, each ended by quiet_cut, holding less than one window plus one run. Samples
    before `start` or from `end` on (seconds; None: no bound) are dropped."""

    def __init__(self, first: float, size: int, start: float | None = None,
                 end: float | None = None) -> None:
        self.clock = first  # time of the next sample pushed
        self.begin = start
        self.stop = end
        self.size = size
        self.search = min(int(CUT_SEARCH_S * SAMPLE_RATE), size // 2)
        self.start = first  # time of the first pending sample
        self.pending: list[np.ndarray] = []
        self.count = 0
        self.ended = False  # `end` reached: nothing more will be kept

    def push(self, samples: np.ndarray) -> Iterator[AudioWindow]:
        samples = np.asarray(samples, np.float32)
        at = self.clock
        self.clock += len(samples) / SAMPLE_RATE
        if self.begin is not None and at < self.begin:
            drop = min(len(samples), round((self.begin - at) * SAMPLE_RATE))
            samples, at = samples[drop:], at + drop / SAMPLE_RATE
        if self.stop is not None:
            keep = max(0, round((self.stop - at) * SAMPLE_RATE))
            if keep <= len(samples):
                samples, self.ended = samples[:keep], True
        if not len(samples):
            return
        if not self.count:
            self.start = at
        self.pending.append(samples)
        self.count += len(samples)
        while self.count >= self.size:
            joined = np.concatenate(self.pending)
            cut = quiet_cut(joined[:self.size], self.search)
            window = AudioWindow(self.start, joined[:cut].copy())
            self.pending, self.count = [joined[cut:]], self.count - cut
            self.start = window.end
            yield window

    def rest(self) -> Iterator[AudioWindow]:
        if self.count:
            yield AudioWindow(self.start, np.concatenate(self.pending))
        self.pending, self.count = [], 0
