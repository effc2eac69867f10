"""The answer backends and models a user can pick from now: whatever is reachable when asked, so
that a model pulled into Ollama or dropped into the models folder shows up without a restart.

Each choice is a NEWSQA_LLM value (`ollama:MODEL`, `openai:MODEL`, `llamacpp:PATH`, `extractive`),
which `Engine.backend_for` turns into a backend.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.answering import EXTRACTIVE
from app.llm import OLLAMA_PROBE_SECONDS, LLMError, ollama_models, openai_endpoint
from app.settings import Settings

# Backend kinds as the page names them, in the order it lists them.
KINDS = {
    EXTRACTIVE: "Extractive (quotes the articles)",
    "ollama": "Ollama",
    "openai": "OpenAI-compatible",
    "llamacpp": "llama.cpp (GGUF file)",
}


@dataclass
class Available:
    """Models by backend kind, each a (label, NEWSQA_LLM value) pair; extractive is always there."""

    models: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def kinds(self) -> list[tuple[str, str]]:
        """(label, kind) of the kinds that have a model, for a backend menu."""
        return [(label, kind) for kind, label in KINDS.items() if self.models.get(kind)]

    def add(self, spec: str) -> None:
        """Make sure `spec` is offered (the configured backend, reachable or not)."""
        kind, _, target = spec.partition(":")
        choices = self.models.setdefault(kind, [])
        if spec not in [value for _, value in choices]:
            choices.insert(0, (Path(target).name if kind == "llamacpp" else target or KINDS[kind], spec))


def kind_of(spec: str) -> str:
    return spec.partition(":")[0]


def openai_models(settings: Settings) -> list[str]:
    """The model ids the configured OpenAI-compatible endpoint lists (its /models); none when newsqa's
    settings name no endpoint (a stray OPENAI_API_KEY does not send articles out) or it does not answer."""
    if not (settings.openai_base_url or settings.openai_api_key):
        return []
    base_url, key = openai_endpoint(settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(
            f"{(base_url or 'https://api.openai.com/v1').rstrip('/')}/models",
            headers=headers,
            timeout=OLLAMA_PROBE_SECONDS,
        )
        response.raise_for_status()
        return sorted(str(entry["id"]) for entry in response.json()["data"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return []


def gguf_files(folder: Path) -> list[Path]:
    """The .gguf files in `folder` (not its subfolders), by name."""
    try:
        return sorted(
            (p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file()), key=lambda p: p.name.lower()
        )
    except OSError:  # no such folder, or unreadable: no files to offer
        return []


def available(settings: Settings, configured: str | None = None) -> Available:
    """What can answer now: Ollama's installed models and the OpenAI-compatible endpoint's (asked at
    once, each within a second), the GGUF files in NEWSQA_MODELS_FOLDER, and extractive; plus the
    `configured` backend's value."""
    with ThreadPoolExecutor(2) as pool:
        ollama = pool.submit(ollama_models, settings.ollama_url)
        openai = pool.submit(openai_models, settings)
        found = Available(
            {
                EXTRACTIVE: [(KINDS[EXTRACTIVE], EXTRACTIVE)],
                "ollama": [(name, f"ollama:{name}") for name in ollama.result()],
                "openai": [(name, f"openai:{name}") for name in openai.result()],
                "llamacpp": [(path.name, f"llamacpp:{path}") for path in gguf_files(settings.models_folder)],
            }
        )
    if configured and kind_of(configured) in KINDS:
        found.add(configured)
    return found


def configured_spec(engine) -> str:
    """The NEWSQA_LLM value of the backend the engine answers with by default: NEWSQA_LLM itself,
    or for `auto` the backend it chose (extractive when none)."""
    if engine.settings.llm.strip() != "auto":
        return engine.settings.llm.strip()
    try:
        backend = engine.backend
    except LLMError:
        return EXTRACTIVE
    return backend.name if backend is not None else EXTRACTIVE
