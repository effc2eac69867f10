"""The Library tab's work, apart from Gradio: the article table, and turning uploads and pasted
text into files with a stable home under the index folder, so that adding the same file or title
again does not add a second article."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from app.index import StoredArticle
from app.settings import Settings
from ingest.sources import is_url, refusing_private_urls

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".json", ".jsonl")
COLUMNS = ["Title", "Date", "Source", "Chunks", "Id"]


def library_folder(settings: Settings) -> Path:
    return settings.index / "library"


def article_rows(articles: Sequence[StoredArticle], search: str = "") -> list[list]:
    """Table rows of the articles whose title, source, file or id contains every word of `search`."""
    words = search.lower().split()
    rows = []
    for a in articles:
        haystack = f"{a.title} {a.source} {a.file} {a.id}".lower()
        if all(w in haystack for w in words):
            rows.append([a.title, a.published.isoformat() if a.published else "", a.source or a.file, a.chunks, a.id])
    return rows


def article_choice(article: StoredArticle) -> tuple[str, str]:
    """(label, id) for the delete menu."""
    when = article.published.isoformat() if article.published else "undated"
    return f"{article.title} ({when}, {article.id})", article.id


def source_names(articles: Sequence[StoredArticle]) -> list[str]:
    return sorted({a.source for a in articles if a.source}, key=str.lower)


# Capitalised words that do not name anything a question could ask about.
_NOT_NAMES = {
    "A",
    "An",
    "The",
    "And",
    "Or",
    "But",
    "Of",
    "In",
    "On",
    "At",
    "To",
    "For",
    "With",
    "By",
    "From",
    "As",
    "Is",
    "Are",
    "Was",
    "Were",
    "How",
    "Why",
    "What",
    "When",
    "Who",
    "Where",
    "After",
    "Before",
    "Over",
    "New",
    "Says",
    "Said",
}
_WORD = re.compile(r"[\w'’.&-]+")


def _names(title: str) -> list[str]:
    """The names in a sentence-case title (runs of capitalised words after its first word, or from it
    when it starts a run or is an acronym), in order, without repeats."""
    words = [w.strip("'’-") for w in _WORD.findall(title)]
    words = [w if "." in w[:-1] else w.rstrip(".") for w in words]  # U.S. keeps its last period
    words = [re.sub(r"['’]s$", "", w) for w in words if w]
    names, run = [], []
    for position, word in enumerate(words + [""]):
        capital = word[:1].isupper() and word not in _NOT_NAMES
        if capital:
            run.append(word)
            continue
        first_alone = run and run[0] == words[0] and len(run) == 1 and not run[0].isupper()
        if run and not first_alone:
            names.append(" ".join(run[:3]))
        run = []
    return list(dict.fromkeys(names))


def example_question(title: str) -> str | None:
    """A whole, short question a title's article answers: about the names in it ("What is the latest
    on Russia, West and Ukraine?"); about the title itself when it is short and names nothing or is in
    title case; None when neither makes a short question."""
    words = title.split()
    long_words = [w for w in words if len(w) > 3]
    title_case = long_words and sum(w[:1].isupper() for w in long_words) >= 0.7 * len(long_words)
    names = [] if title_case else _names(title)[:3]
    if names:
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return f"What is the latest on {listed}?"
    if 0 < len(words) <= 8:
        topic = title.rstrip(".!?:")
        return f"What happened: {topic[:1].lower() + topic[1:] if not title_case else topic}?"
    return None


def example_questions(articles: Sequence[StoredArticle], count: int = 3) -> list[str]:
    """Questions about the newest articles (`articles` come newest first), from their titles."""
    questions = (example_question(a.title) for a in articles)
    return list(dict.fromkeys(q for q in questions if q))[:count]


def store_uploads(paths: Sequence[str], settings: Settings) -> list[str]:
    """Copy uploaded files into the library folder; the copies' paths.

    A copy is named after its file and the hash of its content (report-1a2b3c4d5e6f.txt): two people's
    different report.txt are two articles, while the same file uploaded again is the same article.
    """
    folder = library_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stored = []
    for path in map(Path, paths):
        with path.open("rb") as upload:
            digest = hashlib.file_digest(upload, "sha256").hexdigest()[:12]
        target = folder / f"{path.stem}-{digest}{path.suffix}"
        shutil.copyfile(path, target)
        stored.append(str(target))
    return stored


def forget_uploads(removed: Sequence[StoredArticle], remaining: Sequence[StoredArticle], settings: Settings) -> None:
    """Delete the library copies of the removed articles' files, unless a remaining article still
    comes from that file (a JSONL upload holds several)."""
    folder = library_folder(settings)
    still_used = {a.file for a in remaining}
    for article in removed:
        copy = folder / article.file
        if article.file and article.file not in still_used and copy.is_file():
            copy.unlink()


def _slug(title: str) -> str:
    words = re.findall(r"\w+", title.lower())
    return "-".join(words)[:80].strip("-") or "article"


def store_pasted(title: str, text: str, settings: Settings) -> str:
    """Write pasted text as a plain-text article (headline line, then text); the file's path.

    The file is named after the title: pasting under the same title again updates that article.
    Raises ValueError with a one-line reason for a missing title or text, or text over the size limit.
    """
    title, text = " ".join(title.split()), text.strip()
    if not title:
        raise ValueError("give the article a title")
    if not text:
        raise ValueError("paste the article text")
    limit = int(settings.max_file_mb * 1e6)
    content = f"{title}\n{text}\n"
    if len(content.encode("utf-8")) > limit:
        raise ValueError(f"text is over the {settings.max_file_mb:g} MB limit (NEWSQA_MAX_FILE_MB)")
    folder = library_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_slug(title)}.txt"
    path.write_text(content, encoding="utf-8")
    return str(path)


def split_urls(text: str) -> tuple[list[str], list[str]]:
    """The http(s) URLs in `text` (one a line or separated by spaces), and the entries that are not
    URLs: the page must never read files on the server's disk."""
    entries = text.split()
    return [e for e in entries if is_url(e)], [e for e in entries if not is_url(e)]


def url_guard(settings: Settings) -> AbstractContextManager[None]:
    """Wrap the page's ingestion: it refuses URLs into loopback, private and other non-public networks,
    so that a visitor cannot read the server's own network through it, unless NEWSQA_ALLOW_PRIVATE_URLS
    lets it fetch an intranet. A feed file's links are fetched too, so the guard covers every source."""
    return refusing_private_urls(not settings.allow_private_urls)


FEED_COLUMNS = ["Feed", "Every", "Last refresh", "Entries seen", "Last error"]


def feed_rows(settings: Settings) -> list[list]:
    """The followed feeds (`newsqa follow`), a table row each."""
    from app.feeds import FeedStore

    return [
        [f["name"], f["every"], f["last_refresh"] or "never", f["entries_seen"], f["last_error"] or ""]
        for f in (feed.as_dict() for feed in FeedStore(settings).load())
    ]


def refresh_feeds(engine) -> str:
    """Refresh every followed feed now, behind the page's URL guard; a line a feed."""
    from app.feeds import refresh_all

    results = refresh_all(engine, refuse_private=not engine.settings.allow_private_urls)
    return "\n".join(r.line() for r in results) or "No feeds followed; follow one with: newsqa follow URL"
