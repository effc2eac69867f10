"""Indexes of an eval set's own articles, kept apart from the user's index.

Each lives in Settings.eval_cache under a key made of the folder's content and the settings that
shape an index (embedding model and backend, chunk sizes) and the code that builds one, so a second
run on the same folder reuses it and an edited article, another model or changed chunking code gets a
fresh one. A `complete` marker is written only after an ingest without failures; an index without it
is brought up to date again (ingest is idempotent).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from app.embedders import embedding_device, embedding_label
from app.engine import Engine
from app.settings import Settings

COMPLETE_MARKER = "complete"
ROOT = Path(__file__).resolve().parent.parent
# The code that decides what an index holds (reading, chunking, embedding, metadata): a change to
# it must not be measured on an index the old code built.
INDEX_CODE = (
    *sorted((ROOT / "ingest").glob("*.py")),
    *(ROOT / "app" / name for name in ("index.py", "embedders.py", "embedding.py", "onnx_model.py", "sentences.py")),
)


def fingerprint(folder: Path, settings: Settings) -> str:
    """A digest of every file under `folder` (relative path and bytes), the index-shaping settings
    and the code that builds an index."""
    digest = hashlib.sha256()
    # The backend too: its vectors are close to another's, not equal, and an eval must not mix them.
    digest.update(
        f"{embedding_label(settings)}|{settings.embedding_backend}|{embedding_device(settings)}|"
        f"{settings.chunk_tokens}|{settings.chunk_overlap_tokens}".encode()
    )
    for code in INDEX_CODE:
        digest.update(code.read_bytes())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def engine_for(folder: Path, settings: Settings, progress: bool | None = None) -> Engine:
    """An engine over an index of exactly the articles in `folder`, built on first use."""
    if not folder.is_dir():
        raise RuntimeError(f"articles folder not found: {folder}")
    place = settings.eval_cache / f"{folder.resolve().name}-{fingerprint(folder, settings)}"
    # A local store even when the user's index is on a Chroma server: that index is never touched.
    engine = Engine(settings.model_copy(update={"index": place, "chroma_url": None}))
    marker = place / COMPLETE_MARKER
    if not marker.exists():
        report = engine.add([str(folder)], progress=progress)
        if not report.ok:
            print(f"indexing {folder}: {report.summary()}", file=sys.stderr)
        elif not report.outcomes:
            raise RuntimeError(f"no articles found in {folder}")
        else:
            marker.touch()
    return engine
