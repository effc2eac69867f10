"""Time from starting `newsqa chat` to its first answer through the /ask endpoint (gradio_client)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

STARTUP_LIMIT_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds_to_first_answer(index: Path, question: str) -> tuple[float, float]:
    """Start the chat page over `index` (extractive answers), ask until it answers; the seconds until
    it answered, and until the port first accepted a connection."""
    from gradio_client import Client

    port = _free_port()
    newsqa = Path(sys.executable).parent / "newsqa"
    env = dict(os.environ, NEWSQA_INDEX=str(index), NEWSQA_LLM="extractive")
    env.pop("NEWSQA_CHROMA_URL", None)
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(newsqa), "chat", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    listening = None
    try:
        while time.perf_counter() - started < STARTUP_LIMIT_SECONDS:
            if server.poll() is not None:
                raise RuntimeError(f"newsqa chat exited with code {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.1)
                continue
            listening = listening or time.perf_counter() - started
            answer = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(question, api_name="/ask")
            if answer:
                return time.perf_counter() - started, listening
        raise RuntimeError(f"newsqa chat gave no answer within {STARTUP_LIMIT_SECONDS} s")
    finally:
        server.terminate()
        server.wait(timeout=30)
