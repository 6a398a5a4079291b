"""`vidsift ask` through vlm.backend=openai prints the answer as the server generates it: the
installed console script, run as a user runs it, shows the first piece of the answer while the
server still holds back the rest."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.http_servers import serve
from tests.workers.test_vlm_remote import MODEL, Stream

VIDSIFT = Path(sys.executable).parent / "vidsift"  # the venv's console script


def test_ask_prints_the_answer_as_it_streams(ray_cluster, coded_video, tmp_path):
    first_printed = threading.Event()
    script = Stream((None, "The bars"), (first_printed, " are in frame 3 [1]."))
    printed = bytearray()

    def read(stream) -> None:
        while chunk := os.read(stream.fileno(), 4096):
            printed.extend(chunk)
            if b"answer: The bars" in printed:
                first_printed.set()

    address = ray_cluster.get_runtime_context().gcs_address
    with serve(script.app()) as url:
        ask = subprocess.Popen(
            [str(VIDSIFT), "ask", str(coded_video), "where are the bars?",
             "--set", "vlm.backend=openai", "--set", f"vlm.base_url={url}",
             "--set", f"vlm.model={MODEL}", "--set", "embed.ocr=false",
             "--set", "budget.tokens=512", "--set", f"index.dir={tmp_path / 'index'}",
             "--set", f"ray.address={address}"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        reader = threading.Thread(target=read, args=(ask.stdout,), daemon=True)
        reader.start()
        try:
            errors = ask.stderr.read().decode()
            assert ask.wait(timeout=300) == 0, errors
        finally:
            ask.kill()
        reader.join(10)
    assert script.gates_open == [True]  # the first piece was on screen before the rest was sent
    lines = printed.decode().splitlines()
    assert lines[0] == "answer: The bars are in frame 3 [1]."
    assert lines[1].startswith("cited: [1] ")
