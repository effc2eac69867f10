"""The embedding child processes of a bulk ingest: a child's failure reaches the ingest with its reason
(their vectors are compared with this process's in tests/test_ingest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from ingest.embedding_workers import EmbeddingWorkers

pytestmark = pytest.mark.slow

TEXTS = ["The council approved the harbour budget on Tuesday.", "Rain delayed the final of the regatta."]


def test_a_model_the_child_cannot_load_fails_its_batch_with_the_reason(tmp_path: Path):
    settings = Settings(
        index=tmp_path / "index", embedding_model=str(tmp_path / "no-such-model"), model_cache=tmp_path / "models"
    )
    workers = EmbeddingWorkers(settings, processes=1)
    try:
        with pytest.raises(RuntimeError, match="cannot load embedding model .*no-such-model"):
            workers.submit(TEXTS).result(timeout=300)
    finally:
        workers.close()
