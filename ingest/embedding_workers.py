"""The embedding model in child processes during a bulk ingest, so that reading, chunking and writing
run in this process while the model embeds, and every core embeds: each batch is shared among the
children, so that all of them work on it at once and none waits idle at the end of the run.

Processes, not threads: Chroma's writes hold the GIL for their whole duration, so a writing thread
stalls an embedding thread (together they hid a quarter of the writing at most). Each child loads
the model on its first batch, which makes a failure to load it an ordinary error of that batch.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from app.embedders import make_embedder
from app.embedding import Embedder
from app.settings import Settings

ORPHAN_CHECK_SECONDS = 0.5

_settings: Settings | None = None
_embedder: Embedder | None = None


def _start(settings: Settings, parent: int) -> None:
    global _settings
    _settings = settings
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """A killed parent cannot stop its workers, which would wait for work forever (holding its
    terminal's pipes open): each one leaves when it finds itself orphaned."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(1)


def _encode(texts: list[str]) -> np.ndarray:
    global _embedder
    if _embedder is None:
        _embedder = make_embedder(_settings)
    return _embedder.encode(texts)


class Vectors:
    """A batch's vectors, embedded in parts by several children, joined in order when asked for."""

    def __init__(self, parts: list[Future]):
        self.parts = parts

    @classmethod
    def at_hand(cls, vectors: np.ndarray) -> Vectors:
        """Vectors embedded in this process, in the shape of the children's."""
        done: Future = Future()
        done.set_result(vectors)
        return cls([done])

    def result(self, timeout: float | None = None) -> np.ndarray:
        return np.concatenate([part.result(timeout) for part in self.parts])


class EmbeddingWorkers:
    """`processes` children that embed each batch together."""

    def __init__(self, settings: Settings, processes: int):
        self.processes = processes
        # spawn: a fork would copy this process's threads' locks (onnxruntime's, the chat server's).
        self._pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(settings, os.getpid()),
        )

    def submit(self, texts: list[str]) -> Vectors:
        """The texts' vectors, the batch cut into one contiguous part a child."""
        size = max(1, -(-len(texts) // self.processes))
        return Vectors(
            [self._pool.submit(_encode, texts[start : start + size]) for start in range(0, len(texts), size)]
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
