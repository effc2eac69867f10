"""The ONNX int8 lever: the embedding model exported to ONNX, its weights quantised to int8, run by
onnxruntime with the same tokenizer, mean pooling and normalisation as sentence-transformers.

sentence-transformers' own ONNX backend needs optimum, whose ONNX package pins transformers below
the 5.x that newsqa runs on, so the export is done here with torch.onnx and onnxruntime's dynamic
quantisation (which needs the `onnx` package, in the bench extra).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from app.embedding import Embedder

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_int8(embedder: Embedder, folder: Path) -> Path:
    """The embedder's transformer as an int8 ONNX file in `folder` (exported and quantised once)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantised = folder / "model-int8.onnx"
    if quantised.exists():
        return quantised
    folder.mkdir(parents=True, exist_ok=True)

    class Encoder(torch.nn.Module):  # positional inputs in, last hidden state out: what ONNX export needs
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = embedder.tokenizer(["a sample", "a longer sample text"], padding=True, return_tensors="pt")
    full = folder / "model.onnx"
    with warnings.catch_warnings():  # tracer notes on the attention mask's Python branches, fixed for BERT
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(embedder.model[0].auto_model).eval(), tuple(sample[k] for k in INPUTS), str(full),
                          input_names=list(INPUTS), output_names=["last_hidden_state"],
                          dynamic_axes={k: {0: "batch", 1: "tokens"} for k in (*INPUTS, "last_hidden_state")},
                          opset_version=17, dynamo=False)
    quantize_dynamic(str(full), str(quantised), weight_type=QuantType.QInt8)
    full.unlink()
    return quantised


class OnnxEmbedder(Embedder):
    """An Embedder whose vectors come from an ONNX file; tokenizer and window stay those of the model."""

    def __init__(self, base: Embedder, onnx_file: Path):
        super().__init__(base.model_name, base.device, base.batch_size)
        self.__dict__["model"] = base.model  # the tokenizer and the window come from the loaded model
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if base.threads:
            options.intra_op_num_threads = base.threads  # as torch is told, for a fair comparison
        self._session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # batches of like lengths pad little
        for start in range(0, len(texts), self.batch_size):
            part = order[start:start + self.batch_size]
            tokens = self.tokenizer([texts[i] for i in part], padding=True, truncation=True, max_length=self.window,
                                    return_tensors="np")
            hidden = self._session.run(None, {k: tokens[k].astype(np.int64) for k in INPUTS})[0]
            mask = tokens["attention_mask"][..., None]
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
            vectors[part] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return vectors
