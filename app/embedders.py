"""The embedder the settings ask for, and where it runs: a CUDA GPU when torch sees one (unless
NEWSQA_EMBEDDING_DEVICE says otherwise), else the CPU with the chosen backend (app/embedding.py,
app/onnx_model.py).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from app.embedding import Embedder, TorchEmbedder
from app.onnx_model import OnnxEmbedder
from app.settings import Settings

GPU_BATCH_SIZE = 1024  # texts a GPU encodes at once: a tenth of its memory, most of its speed


def cuda_available() -> bool:
    """Whether torch sees a CUDA device. torch is imported only where an NVIDIA driver is present:
    importing it takes seconds, and most machines have no GPU to find."""
    if not (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()) or not find_spec("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def embedding_device(settings: Settings) -> str:
    """`cpu` or a CUDA device, as NEWSQA_EMBEDDING_DEVICE asks; a GPU asked for and missing is an error."""
    requested = settings.embedding_device
    if requested == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda" if requested == "auto" else requested
    if requested == "auto":
        return "cpu"
    raise RuntimeError(
        f"NEWSQA_EMBEDDING_DEVICE={requested}, but torch sees no CUDA device here (no NVIDIA "
        "driver, or a torch built without CUDA); set it to auto or cpu"
    )


def embedding_label(settings: Settings) -> str:
    """What an index records of the vectors in it: the model alone, since its vectors from every
    backend and device are close enough to search one another (cosine 0.99)."""
    return settings.embedding_model


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for, on the device they ask for."""
    device = embedding_device(settings)
    if device != "cpu":
        return TorchEmbedder(settings.embedding_model, device, GPU_BATCH_SIZE, settings.embedding_threads)
    if settings.embedding_backend == "torch":
        return TorchEmbedder(settings.embedding_model, "cpu", settings.embedding_batch_size, settings.embedding_threads)
    variant = settings.embedding_backend.removeprefix("onnx-")  # int8, fp32, or auto: the faster on this CPU
    return OnnxEmbedder(settings.embedding_model, Path(settings.model_cache), settings.embedding_threads, variant)
