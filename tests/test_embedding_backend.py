"""The ONNX variant for this CPU: int8 or fp32, chosen by timing both once and recorded in the model cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from app import onnx_model
from app.embedders import make_embedder
from app.onnx_model import DESCRIPTION_FILE, OnnxEmbedder, choose, cpu_identity, record_file
from app.settings import DEFAULT_EMBEDDING_MODEL, Settings

TEXTS = [
    "Where will the talks with the U.S. take place?",
    "Russian and American negotiators are to meet in Geneva next month.",
    "Shares fell sharply after the central bank raised interest rates for the third time this year.",
    *onnx_model.TIMING_TEXTS[:2],
]

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni sha_ni

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni sha_ni
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp sve i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd40
"""


def test_int8_stays_unless_fp32_is_clearly_faster():
    assert choose(int8_ms=14.5, fp32_ms=36.3) == "int8"  # VNNI: int8 far ahead
    assert choose(int8_ms=10.0, fp32_ms=9.6) == "int8"  # 4% faster: within the noise, int8 stays
    assert choose(int8_ms=10.0, fp32_ms=10.0) == "int8"
    assert choose(int8_ms=10.0, fp32_ms=9.4) == "fp32"
    assert choose(int8_ms=42.3, fp32_ms=39.1) == "fp32"  # AMD Zen 2, 300 chunk texts (seconds, one thread)


def test_the_cpu_is_known_by_its_name_and_the_flags_that_decide(tmp_path: Path):
    (tmp_path / "xeon").write_text(XEON)
    (tmp_path / "graviton").write_text(GRAVITON)
    (tmp_path / "zen2").write_text(XEON.replace("avx512f avx512bw avx512_vnni ", ""))
    xeon, graviton, zen2 = (cpu_identity(tmp_path / name) for name in ("xeon", "graviton", "zen2"))
    assert xeon["name"] == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    assert xeon["flags"] == ["avx2", "avx512_vnni", "avx512f"]  # sse2, sha_ni and the rest do not decide
    assert graviton["name"] == "0x41 0xd40" and graviton["flags"] == ["asimddp", "i8mm", "sve"]
    assert zen2["flags"] == ["avx2"]
    assert cpu_identity(tmp_path / "none")["machine"]  # no /proc/cpuinfo: what platform knows


def test_an_asked_variant_is_used_without_timing(monkeypatch):
    monkeypatch.setattr(onnx_model, "measure", _refuse)
    monkeypatch.setenv("NEWSQA_EMBEDDING_BACKEND", "onnx-fp32")
    assert make_embedder(Settings()).backend == "onnx-fp32"
    assert make_embedder(Settings(embedding_backend="onnx-int8")).choice == {"variant": "int8", "source": "asked"}
    assert make_embedder(Settings(embedding_backend="torch")).backend == "torch"
    monkeypatch.setenv("NEWSQA_EMBEDDING_BACKEND", "onnx-fp16")
    with pytest.raises(ValueError, match="embedding_backend"):
        Settings()


def _refuse(embedder):
    raise AssertionError("timed, though a variant was asked for or recorded")


@pytest.fixture(scope="module")
def export() -> Path:
    """The default model's export, made once (in the user's model cache, as the other tests use it)."""
    embedder = OnnxEmbedder(DEFAULT_EMBEDDING_MODEL, Settings().model_cache, 1, "int8")
    embedder._file(DESCRIPTION_FILE)
    return embedder.folder


@pytest.fixture
def cache(export: Path, tmp_path: Path) -> Path:
    """A model cache of its own holding the export and no choice yet."""
    cache = tmp_path / "models"
    shutil.copytree(export, cache / export.name, ignore=shutil.ignore_patterns("backend-*"))
    return cache


@pytest.mark.slow
def test_auto_times_once_then_every_later_embedder_reads_the_record(cache: Path, monkeypatch):
    calls = []

    def counted(embedder):
        calls.append(embedder)
        return real(embedder)

    real = onnx_model.measure
    monkeypatch.setattr(onnx_model, "measure", counted)
    settings = Settings(model_cache=cache)
    first = make_embedder(settings)
    first.encode(["first use"])
    assert first.choice["source"] == "measured" and len(calls) == 1
    record = json.loads(record_file(first.folder).read_text())
    assert record["variant"] in onnx_model.VARIANTS and first.backend == f"onnx-{record['variant']}"
    assert record["int8_ms"] > 0 and record["fp32_ms"] > 0 and record["threads"] == 1
    assert record["cpu"] == cpu_identity() and record["texts"] == len(onnx_model.TIMING_TEXTS)
    assert not list(cache.rglob("*.partial"))

    again = make_embedder(settings)
    again.encode(["second use"])
    assert again.choice == {**record, "source": "recorded"} and len(calls) == 1  # not timed again

    # The record decides: one that says fp32 runs the fp32 file, exactly as asking for it does.
    record_file(first.folder).write_text(json.dumps({**record, "variant": "fp32"}))
    recorded = make_embedder(settings).encode(TEXTS)
    asked = make_embedder(settings.model_copy(update={"embedding_backend": "onnx-fp32"})).encode(TEXTS)
    int8 = make_embedder(settings.model_copy(update={"embedding_backend": "onnx-int8"})).encode(TEXTS)
    assert np.array_equal(recorded, asked) and not np.allclose(recorded, int8, atol=1e-4)
    assert len(calls) == 1


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` unwritable: by its mode, or for root (whom modes do not stop) by a read-only bind mount."""
    if os.geteuid():
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")] if path.is_dir()}
        for path in modes:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot make a read-only folder as root here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_read_only_cache_runs_int8_and_says_why_once(cache: Path, monkeypatch, capsys):
    monkeypatch.setattr(onnx_model, "measure", _refuse)  # nothing to record it in: not worth timing
    monkeypatch.setattr(onnx_model, "_said", set())
    settings = Settings(model_cache=cache)
    with read_only(cache):
        embedders = [make_embedder(settings) for _ in range(2)]
        vectors = [embedder.encode(TEXTS) for embedder in embedders]
    assert [e.choice["source"] for e in embedders] == ["fallback", "fallback"]
    assert [e.backend for e in embedders] == ["onnx-int8", "onnx-int8"]
    int8 = make_embedder(settings.model_copy(update={"embedding_backend": "onnx-int8"})).encode(TEXTS)
    assert np.array_equal(vectors[0], int8)
    error = capsys.readouterr().err
    assert error.count("newsqa: embedding backend auto: could not time int8 against fp32") == 1, error
    assert "running onnx-int8" in error and ("Read-only file system" in error or "Permission denied" in error)


@pytest.mark.slow
def test_a_failed_timing_runs_int8_and_records_nothing(cache: Path, monkeypatch, capsys):
    def fail(embedder):
        raise RuntimeError("onnxruntime could not load model-fp32.onnx")

    monkeypatch.setattr(onnx_model, "measure", fail)
    monkeypatch.setattr(onnx_model, "_said", set())
    embedder = make_embedder(Settings(model_cache=cache))
    assert embedder.encode(TEXTS).shape == (len(TEXTS), 384)
    assert embedder.backend == "onnx-int8" and embedder.choice["source"] == "fallback"
    assert not record_file(embedder.folder).exists()
    assert "(RuntimeError: onnxruntime could not load model-fp32.onnx); running onnx-int8" in capsys.readouterr().err


@pytest.mark.slow
def test_auto_here_records_a_choice_and_every_variant_is_close_to_torch(cache: Path):
    auto = make_embedder(Settings(model_cache=cache))
    auto.encode(["first use"])
    assert auto.choice["source"] == "measured" and record_file(auto.folder).exists()
    exact = make_embedder(Settings(embedding_backend="torch")).encode(TEXTS)
    vectors = {
        variant: make_embedder(Settings(model_cache=cache, embedding_backend=f"onnx-{variant}")).encode(TEXTS)
        for variant in onnx_model.VARIANTS
    }
    for variant, ours in vectors.items():
        cosines = np.sum(ours * exact, axis=1)
        assert cosines.min() > 0.98, (variant, cosines)
    between = np.sum(vectors["int8"] * vectors["fp32"], axis=1)
    assert between.min() > 0.98, between
    # fp32 is the export unquantised: nearer torch's vectors than int8 is.
    assert np.sum(vectors["fp32"] * exact, axis=1).min() > 0.9999
