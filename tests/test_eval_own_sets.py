"""The project's own eval sets against eval/baseline.json: how `make test` catches a change that
makes retrieval, answers or refusals worse."""

from __future__ import annotations

import pytest

from app.settings import Settings
from eval import baseline, dataset, runner
from eval.indexes import engine_for

OWN_SETS = {d.name: d for d in dataset.own_sets()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OWN_SETS))
def test_own_set_holds_its_baseline(name, tmp_path):
    data = OWN_SETS[name]
    saved = baseline.read(baseline.DEFAULT_FILE)["datasets"].get(name)
    assert saved and saved["metrics"], f"no baseline for {name}: run `newsqa eval --update-baseline`"
    # The extractive answerer, as the baseline was measured with it: no LLM server is needed. Torch's
    # exact vectors, as the baseline was measured with them: int8 vectors differ from CPU to CPU, and a
    # gate of one question in thirty must not fail on another CPU's rounding.
    settings = Settings(
        index=tmp_path / "index", eval_cache=tmp_path / "cache", llm="extractive", embedding_backend="torch"
    )
    result = runner.run(engine_for(data.articles, settings, progress=False), data, progress=False)
    assert result.backend == saved["backend"]
    assert not [q.error for q in result.questions if q.error]
    regressions = baseline.compare(baseline.read(baseline.DEFAULT_FILE), name, result.metrics)
    assert not regressions, "\n".join(map(str, regressions))


def test_word_counts_have_tolerances_in_words():
    """answer_words is a median count of words: a share's tolerance (0.03) would fail on one word more."""
    for name, entry in baseline.read(baseline.DEFAULT_FILE)["datasets"].items():
        if "answer_words" in entry["metrics"]:
            assert entry["metrics"]["answer_words"]["tolerance"] >= 1, name
