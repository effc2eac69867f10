"""The embedding model as an int8 ONNX file, run by onnxruntime.

sentence-transformers' own ONNX backend needs optimum, whose ONNX package pins transformers below
the 5.x newsqa runs on; so the whole sentence-transformers pipeline (transformer, pooling,
normalisation) is exported here with torch.onnx, and its weights quantised to int8 per channel by
onnxruntime. That is done once per model, in the model cache; afterwards only onnxruntime and the
`tokenizers` library run, and torch is never imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np

from app.embedding import Embedder, load_sentence_transformer, resolve_model_path

# Bump when the exported file changes shape, so caches made by older code are not used.
EXPORT_FORMAT = 2
MODEL_FILE = "model-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
DESCRIPTION_FILE = "embedder.json"


def cache_key(model_name: str) -> str:
    """The model's folder, its files' sizes and times, and the export format: a new model or new
    weights in the same folder get a new export."""
    path = Path(resolve_model_path(model_name))
    parts = [str(path.resolve()) if path.exists() else model_name, str(EXPORT_FORMAT)]
    if path.is_dir():
        parts += [
            f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
            for p in sorted(path.rglob("*"))
            if p.is_file()
        ]
    readable = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(model_name).name)
    return f"{readable}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:12]}"


def export(model_name: str, target: Path) -> None:
    """Write the int8 ONNX model, its tokenizer and a description into `target`, whole or not at all."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = load_sentence_transformer(model_name)
    print(f"preparing the embedding model {model_name!r} for onnxruntime (once; about 10 s)", file=sys.stderr)
    inputs = list(model.tokenizer.model_input_names)  # BERT: input_ids, token_type_ids, attention_mask

    class Pipeline(torch.nn.Module):  # positional tensors in, the sentence embedding out: what export traces
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            features = dict(zip(inputs, tensors))
            # Texts run one at a time, never padded, so the transformer is traced without the padding
            # mask, whose handling took a sixth of a run's CPU time; pooling still reads the mask (all ones).
            features = self.model[0](features, attention_mask=None)
            for module in list(self.model)[1:]:
                features = module(features)
            return features["sentence_embedding"]

    staging = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        sample = model.tokenizer(["a sample", "a longer sample text"], padding=True, return_tensors="pt")
        full = staging / "model.onnx"
        with warnings.catch_warnings():  # tracer notes on Python branches that are fixed for this model
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pipeline().eval(),
                tuple(sample[k] for k in inputs),
                str(full),
                input_names=inputs,
                output_names=["embedding"],
                dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in inputs}, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        # Per channel: one scale per output column keeps vectors at cosine 0.994 to torch's (0.95 per tensor).
        # Its advice to pre-process the graph is for static quantisation; and its root-logger call would
        # leave a handler behind that prints every library's debug messages.
        handlers = list(logging.root.handlers)
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(str(full), str(staging / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(logging.NOTSET)
            logging.root.handlers = handlers
        full.unlink()
        model.tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
        (staging / DESCRIPTION_FILE).write_text(
            json.dumps(
                {
                    "model": model_name,
                    "inputs": inputs,
                    "window": int(model.max_seq_length),
                    "dimension": int(model.get_embedding_dimension()),
                }
            )
        )
        try:
            staging.rename(target)
        except OSError:  # another process finished the same export first
            if not (target / DESCRIPTION_FILE).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class OnnxEmbedder(Embedder):
    def __init__(self, model_name: str, cache: Path, threads: int):
        super().__init__(model_name, threads)
        self.folder = cache / cache_key(model_name)

    def _file(self, name: str) -> Path:
        """A file of the model's export, which is made on first use."""
        if not (self.folder / DESCRIPTION_FILE).exists():
            export(self.model_name, self.folder)
        return self.folder / name

    @cached_property
    def _description(self) -> dict:
        return json.loads(self._file(DESCRIPTION_FILE).read_text())

    @cached_property
    def _session(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        # onnxruntime's fused SkipLayerNormalization runs slower here than the Add and LayerNormalization
        # it replaces: without it the model took 0.74x the CPU time on realtimeqa_2022's chunk texts (one
        # thread), for vectors as close to the full-precision model's (mean cosine 0.994 either way).
        options.add_session_config_entry("optimization.disable_specified_optimizers", "SkipLayerNormFusion")
        return onnxruntime.InferenceSession(str(self._file(MODEL_FILE)), options, providers=["CPUExecutionProvider"])

    def _load_tokenizer(self, truncate: bool):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self._file(TOKENIZER_FILE)))
        tokenizer.no_padding()  # texts run one at a time
        if truncate:
            tokenizer.enable_truncation(self.window)
        else:
            tokenizer.no_truncation()
        return tokenizer

    # Two tokenizers, since truncation is a setting of the tokenizer object: switching one back and
    # forth would race when the chat page counts an upload's tokens while it answers a question.
    @cached_property
    def _tokenizer(self):
        return self._load_tokenizer(truncate=True)

    @cached_property
    def _counter(self):
        return self._load_tokenizer(truncate=False)  # counting a text longer than the window is the point

    @property
    def window(self) -> int:
        return self._description["window"]

    @property
    def dimension(self) -> int:
        return self._description["dimension"]

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch_fast(texts, add_special_tokens=False)]

    def encode(self, texts: list[str]) -> np.ndarray:
        # One text a run, as the export requires (it has no padding mask). A text's vector then does not
        # depend on the texts beside it (int8 activations take their range from the whole run), and on a
        # CPU batches were no faster: with the mask, quail_news's chunks took 1.24 CPU s one by one,
        # 1.40 s in batches of 8, 1.90 s in batches of 64.
        vectors = [self._session.run(None, self._inputs(e))[0][0] for e in self._tokenizer.encode_batch_fast(texts)]
        return np.stack(vectors) if vectors else np.zeros((0, self.dimension), dtype=np.float32)

    def _inputs(self, encoding) -> dict[str, np.ndarray]:
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        return {name: np.array([columns[name]], dtype=np.int64) for name in self._description["inputs"]}
