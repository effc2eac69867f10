"""The embedding model as ONNX files, fp32 and int8, run by onnxruntime; and which of the two runs
faster on this CPU.

sentence-transformers' own ONNX backend needs optimum, whose ONNX package pins transformers below
the 5.x newsqa runs on; so the whole sentence-transformers pipeline (transformer, pooling,
normalisation) is exported here with torch.onnx, and a copy of its weights quantised to int8 per
channel by onnxruntime. That is done once per model, in the model cache; afterwards only onnxruntime
and the `tokenizers` library run, and torch is never imported.

int8 is faster where the CPU multiplies int8 natively (x86 VNNI or AMX, ARM dot products), and slower
than fp32 elsewhere (AMD Zen 2: 42.3 s against 39.1 s for 300 chunk texts, one thread). So the
`auto` backend times both once per CPU, on first use, and records the choice beside the export:
see `choose` for the rule and `chosen_variant` for the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
import warnings
from datetime import UTC, datetime
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import numpy as np
from filelock import FileLock

from app.embedding import Embedder, load_sentence_transformer, resolve_model_path

# Bump when the exported files change, so caches made by older code are not used.
EXPORT_FORMAT = 3
VARIANTS = ("int8", "fp32")  # int8 first: the choice when the timing cannot decide
MODEL_FILES = {variant: f"model-{variant}.onnx" for variant in VARIANTS}
TOKENIZER_FILE = "tokenizer.json"
DESCRIPTION_FILE = "embedder.json"

# The instruction sets that decide whether int8 matrix products pay, as /proc/cpuinfo names them:
# x86 VNNI (AVX-512 or AVX) and AMX, ARM's dot product and int8 matrix multiply; the wider vector sets
# beside them, since they decide how fast fp32 runs.
INT8_FLAGS = frozenset(
    {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile", "asimddp", "i8mm", "sve", "sve2"}
)
FP32_MARGIN = 0.95  # fp32 is chosen when it takes under 0.95x int8's time
TIMING_ROUNDS = 3
LOCK_TIMEOUT_S = 120  # a first use waits this long for another process timing the same CPU

# Invented news paragraphs of chunk size (134 to 152 word pieces; a chunk's text averages about 150):
# what both variants are timed on. Fixed, so that every CPU is timed on the same work.
TIMING_TEXTS = (
    "The city council voted on Tuesday to extend the harbour ferry service through the winter, reversing a "
    "decision made in the spring to cut the late crossings. Councillors said ridership had grown by almost a "
    "third since the bridge closed for repairs in July, and that shift workers at the hospital and the port "
    "had no other way home after ten at night. The operator will add two boats and hire eleven crew members, "
    "at a cost the city put at 4.2 million dollars a year. Opponents argued that the money should go to "
    "road repairs instead, and one member called the plan a subsidy for a service that empties once the "
    "bridge reopens. The mayor said the vote was about people, not boats, and promised a review in March.",
    "Shares in the largest carmakers fell sharply on Wednesday after the central bank raised interest rates "
    "for the third time this year and signalled that more increases could follow before December. Analysts "
    "had expected a smaller step, and the decision sent borrowing costs for car loans to their highest level "
    "in more than a decade. Dealers reported that orders for new vehicles had already slowed in the summer, "
    "as buyers waited for prices to settle and for parts shortages to ease. The bank's governor told "
    "reporters that inflation remained too high and too persistent, pointing to the cost of food, rent and "
    "energy. Unions warned that factory jobs were at risk if sales kept falling into the new year.",
    "Negotiators from both countries are to meet in Geneva next month for the first talks on arms control "
    "since the treaty lapsed, officials said on Friday. The meeting, which had been postponed twice, will "
    "cover missile deployments in Europe and the exchange of data on weapons tests. A senior diplomat said "
    "neither side expected an agreement at the first round, but that the fact of talking again mattered "
    "after a year of sanctions and expelled envoys. Observers from three neutral states will attend the "
    "opening session. The foreign minister told parliament that any deal would have to be verified on the "
    "ground, and that inspectors would need access to sites that have been closed to them since 2019.",
    "Firefighters contained most of the wildfire that forced thousands of residents from the hills above the "
    "valley, the state forestry agency said late on Sunday, as cooler air and light rain slowed its spread. "
    "The fire burned more than 40,000 acres over six days and destroyed at least 120 homes, many of them in "
    "small towns along the old mining road. Evacuation orders were lifted for two towns, though officials "
    "asked people to stay away until power lines were checked and roads cleared of fallen trees. The cause "
    "is under investigation. Residents who returned described streets of ash and chimneys standing alone, "
    "and the governor asked for federal aid to rebuild schools and water systems before the winter storms.",
)

_said: set[str] = set()  # fallback messages already printed by this process


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
    """Write the ONNX model in fp32 and int8, its tokenizer and a description into `target`, whole or not
    at all."""
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
        full = staging / MODEL_FILES["fp32"]
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
            quantize_dynamic(
                str(full), str(staging / MODEL_FILES["int8"]), weight_type=QuantType.QInt8, per_channel=True
            )
        finally:
            logging.disable(logging.NOTSET)
            logging.root.handlers = handlers
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


def cpu_identity(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """What decides int8 against fp32 on this CPU: its architecture, model name and INT8_FLAGS (from
    /proc/cpuinfo on Linux, the first processor's lines; elsewhere what `platform` knows)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        lines = []
    fields: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    # x86 names its model; ARM gives an implementer and part number, and its flags as "Features".
    arm = " ".join(fields[k] for k in ("CPU implementer", "CPU part") if k in fields)
    return {
        "machine": platform.machine(),
        "name": fields.get("model name") or arm or platform.processor(),
        "flags": sorted(INT8_FLAGS & set((fields.get("flags") or fields.get("Features") or "").split())),
    }


def record_file(folder: Path) -> Path:
    """Where auto's choice for this CPU is kept, beside the export it was timed on: one file for each
    CPU identity and onnxruntime version (a new version brings new kernels), so that a cache shared
    by several machines keeps each one's choice."""
    identity = {**cpu_identity(), "onnxruntime": version("onnxruntime")}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return folder / f"backend-{digest}.json"


def choose(int8_ms: float, fp32_ms: float) -> str:
    """int8 unless fp32 is clearly faster: fp32 must take under FP32_MARGIN (0.95x) of int8's time.

    On a tie int8 stays, the smaller model in each embedding process. The margin is above the
    measurement's noise (the fastest of alternating rounds) and below what fp32 gains where int8 does
    not pay (AMD Zen 2: 0.92x); where it does, int8 is far faster and no noise makes fp32 win."""
    return "fp32" if fp32_ms < FP32_MARGIN * int8_ms else "int8"


def measure(embedder: OnnxEmbedder) -> dict:
    """Both variants timed on TIMING_TEXTS with the embedder's threads, with the choice and what it was
    measured on. Rounds alternate so that both see the same load, and each variant keeps its fastest
    round, since other work on the machine only ever adds time (well under a second here in all)."""
    runs = {v: OnnxEmbedder(embedder.model_name, embedder.cache, embedder.threads, v) for v in VARIANTS}
    for run in runs.values():
        run.encode(list(TIMING_TEXTS[:1]))  # loads the session: not timed
    best = dict.fromkeys(VARIANTS, math.inf)
    for _ in range(TIMING_ROUNDS):
        for variant, run in runs.items():
            start = time.perf_counter()
            run.encode(list(TIMING_TEXTS))
            best[variant] = min(best[variant], time.perf_counter() - start)
    ms = {variant: 1000 * seconds / len(TIMING_TEXTS) for variant, seconds in best.items()}
    return {
        "variant": choose(ms["int8"], ms["fp32"]),
        "int8_ms": ms["int8"],  # a text, the fastest round
        "fp32_ms": ms["fp32"],
        "texts": len(TIMING_TEXTS),
        "rounds": TIMING_ROUNDS,
        "threads": embedder.threads,
        "cpu": cpu_identity(),
        "onnxruntime": version("onnxruntime"),
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def chosen_variant(embedder: OnnxEmbedder) -> dict:
    """auto's variant for this CPU: the record, or on this CPU's first use `measure`, recorded for every
    later process. Processes that start together (an ingest's embedding children) wait for the one that
    measures. Where the record cannot be written (a read-only cache) or the timing fails, int8, said
    once on stderr: unrecorded, each process would otherwise time again, and could choose otherwise."""
    path = record_file(embedder.folder)
    try:
        return {**json.loads(path.read_text()), "source": "recorded"}
    except (OSError, ValueError):
        pass  # none yet, or unreadable: made again below
    try:
        with FileLock(path.with_suffix(".lock"), timeout=LOCK_TIMEOUT_S):
            if path.exists():  # measured by the process that held the lock
                return {**json.loads(path.read_text()), "source": "recorded"}
            record = measure(embedder)
            # Written whole, then renamed: a reader never sees half a record. Under the lock one name
            # serves; what a failed write leaves behind, the next one overwrites.
            staging = path.with_suffix(".partial")
            staging.write_text(json.dumps(record, indent=2))
            staging.replace(path)
            return {**record, "source": "measured"}
    except Exception as error:  # whatever went wrong, the embedder still runs
        reason = f"{type(error).__name__}: {error}"
        message = (
            f"newsqa: embedding backend auto: could not time int8 against fp32 for this CPU and record "
            f"the choice in {embedder.folder} ({reason}); running onnx-int8. NEWSQA_EMBEDDING_BACKEND="
            "onnx-int8, onnx-fp32 or torch chooses without timing."
        )
        if message not in _said:
            _said.add(message)
            print(message, file=sys.stderr)
        return {"variant": "int8", "source": "fallback", "reason": reason}


class OnnxEmbedder(Embedder):
    """The export run in one variant: `int8`, `fp32`, or `auto`, the faster on this CPU (`chosen_variant`)."""

    def __init__(self, model_name: str, cache: Path, threads: int, variant: str = "auto"):
        super().__init__(model_name, threads)
        self.cache = cache
        self.folder = cache / cache_key(model_name)
        self.asked = variant

    def _file(self, name: str) -> Path:
        """A file of the model's export, which is made on first use."""
        if not (self.folder / DESCRIPTION_FILE).exists():
            export(self.model_name, self.folder)
        return self.folder / name

    @cached_property
    def choice(self) -> dict:
        """The variant this embedder runs, and how it came to it: asked for, or auto's record and figures."""
        if self.asked != "auto":
            return {"variant": self.asked, "source": "asked"}
        self._file(DESCRIPTION_FILE)  # the export first: its failure is an error, not a fallback to int8
        return chosen_variant(self)

    @property
    def backend(self) -> str:
        return f"onnx-{self.choice['variant']}"

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
        model = self._file(MODEL_FILES[self.choice["variant"]])
        return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

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
