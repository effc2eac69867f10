"""The CPU embedding backends side by side on real chunk texts:

    python -m eval.bench.backends DATASET_DIR [--texts 300] [--rounds 3] [--threads 1]

The first `--texts` chunk texts newsqa embeds for the dataset's articles (sorted by file name; each
chunk's new sentences, not the short title headers embedded once an article), each backend encoding
all of them in turn; rounds alternate the backends so that all see the same load, and each
keeps its fastest round (other work on the machine only ever adds time). It prints, for each, the
fastest round's wall and CPU seconds and chunk texts a second, and the choice `auto` records here.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from app.embedders import make_embedder
from app.settings import Settings
from app.timing import Timing
from eval.bench import corpus, ingestion, report

BACKENDS = ("onnx-int8", "onnx-fp32", "torch")


def compare(settings: Settings, texts: list[str], backends: tuple[str, ...], rounds: int) -> dict[str, Timing]:
    """Each backend's fastest round (by wall time) over `texts`, models loaded beforehand."""
    embedders = {b: make_embedder(settings.model_copy(update={"embedding_backend": b})) for b in backends}
    for embedder in embedders.values():
        embedder.encode(texts[:1])  # loads the model: not timed
    best = {backend: Timing(math.inf, math.inf) for backend in backends}
    for _ in range(rounds):
        for backend, embedder in embedders.items():
            spent = ingestion.encode_raw(texts, embedder)
            if spent.wall < best[backend].wall:
                best[backend] = spent
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench.backends", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder with articles/")
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="NEWSQA_EMBEDDING_THREADS of every backend")
    args = parser.parse_args(argv)
    settings = Settings(embedding_threads=args.threads, embedding_device="cpu")
    auto = make_embedder(settings)
    articles = corpus.read_articles(args.dataset / "articles")
    plan = ingestion.embedding_plan(articles, settings, auto)
    texts = plan.texts[len(plan.texts) - len(plan) :][: args.texts]  # the headers come first, one an article
    for backend, spent in compare(settings, texts, BACKENDS, args.rounds).items():
        print(
            f"{backend}: {spent.wall:.1f} s wall, {spent.cpu:.1f} s CPU, {len(texts) / spent.wall:.1f} chunk texts/s "
            f"({len(texts)} texts, fastest of {args.rounds} rounds, {args.threads} thread(s))"
        )
    print(f"auto: {auto.backend}{report.backend_choice(auto.choice)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
