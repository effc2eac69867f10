"""The cache key of an eval set's index: its folder's content and the settings that shape an index."""

from __future__ import annotations

from app.settings import Settings
from eval.indexes import fingerprint


def test_fingerprint_follows_content_names_and_index_settings(tmp_path):
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("first")
    (folder / "sub" / "b.md").write_text("second")
    settings = Settings(index=tmp_path / "index")
    key = fingerprint(folder, settings)
    assert fingerprint(folder, settings) == key

    (folder / "sub" / "b.md").write_text("second, edited")
    edited = fingerprint(folder, settings)
    assert edited != key

    (folder / "sub" / "b.md").rename(folder / "sub" / "c.md")
    assert fingerprint(folder, settings) not in (key, edited)

    (folder / "sub" / "c.md").rename(folder / "sub" / "b.md")
    assert fingerprint(folder, settings) == edited
    assert fingerprint(folder, settings.model_copy(update={"chunk_tokens": 100})) != edited
    assert fingerprint(folder, settings.model_copy(update={"embedding_model": "/models/other"})) != edited
    assert fingerprint(folder, settings.model_copy(update={"llm": "extractive"})) == edited  # answers only
    assert fingerprint(folder, settings.model_copy(update={"embedding_backend": "torch"})) != edited


def test_fingerprint_follows_the_code_that_builds_an_index(tmp_path, monkeypatch):
    from eval import indexes

    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a.md").write_text("first")
    settings = Settings(index=tmp_path / "index")
    key = fingerprint(folder, settings)
    chunking = tmp_path / "chunking.py"
    chunking.write_text("# another way to chunk")
    monkeypatch.setattr(indexes, "INDEX_CODE", (*indexes.INDEX_CODE[:-1], chunking))
    assert fingerprint(folder, settings) != key
    assert any(p.name == "chunking.py" for p in indexes.INDEX_CODE[:-1])
