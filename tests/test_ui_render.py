"""The chat page's rendering, library and serving helpers, without a browser or a model."""

from __future__ import annotations

import re
import socket
import sys
from datetime import date
from pathlib import Path

import pytest

from app.documents import Answer, Citation, Passage, SentenceSupport
from app.index import StoredArticle
from app.settings import Settings
from app.ui import library, render
from app.ui.auth import parse_auth
from app.ui.server import check_free, wants_browser
from conftest import make_passage


def citation(
    number: int = 1,
    passage: str = "First one. The <key> sentence. Last one.",
    sentence: str = "The <key> sentence.",
    **fields,
) -> Citation:
    start = passage.index(sentence)
    end = start + len(sentence)
    values = dict(
        number=number,
        article_id="a1",
        title="Talks & treaties",
        published=date(2024, 3, 5),
        source="Wire",
        url="https://example.org/a?x=1&y=2",
        file="a.txt",
        passage=passage,
        sentence=passage[start:end],
        sentence_start=start,
        sentence_end=end,
    )
    return Citation(**{**values, **fields})


def answer(
    text: str = "Talks start [1].",
    citations=(citation(),),
    backend: str = "extractive",
    warnings=(),
    refused: bool = False,
    passages=(),
) -> Answer:
    return Answer(
        question="When do <talks> start?",
        answer=text,
        refused=refused,
        citations=tuple(citations),
        backend=backend,
        timings={},
        warnings=tuple(warnings),
        passages=tuple(passages),
    )


def passage(
    rank: int,
    title: str = "Talks & treaties",
    text: str = "Talks may start in spring.",
    url: str = "https://example.org/a?x=1&y=2",
    published: date | None = date(2024, 3, 5),
) -> Passage:
    return make_passage(text, rank, title=title, published=published, source="Wire", url=url, file=f"a{rank}.txt")


def refusal(*passages: Passage) -> Answer:
    return answer(
        text="The indexed articles do not answer this question.", citations=(), refused=True, passages=passages
    )


def stored(title: str, published: date | None, source: str = "", article_id: str = "id1") -> StoredArticle:
    return StoredArticle(
        id=article_id,
        title=title,
        published=published,
        source=source,
        url="",
        file=f"{article_id}.txt",
        authors=(),
        content_hash="h",
        chunks=2,
    )


def test_markers_link_to_their_source_in_the_panel():
    assert render.answer_markdown("Geneva [2]. Both [1, 3].", turn=4) == (
        "Geneva [[2]](#source-4-2). Both [[1]](#source-4-1)[[3]](#source-4-3)."
    )


def test_passage_marks_the_supporting_sentence_and_escapes_html():
    html = render.highlighted_passage(citation())
    assert html == "First one. <mark>The &lt;key&gt; sentence.</mark> Last one."


def test_long_passage_is_cut_around_the_sentence_at_word_boundaries():
    passage = "word " * 200 + "The key sentence. " + "tail " * 200
    html = render.highlighted_passage(citation(passage=passage, sentence="The key sentence."), context=50)
    before, rest = html.split("<mark>")
    after = rest.split("</mark>")[1]
    assert before.startswith("…word") and len(before) <= 52
    assert after.endswith("tail…") and len(after) <= 52


def test_source_card_has_anchor_title_link_date_source_and_highlight():
    block = render.sources_block(answer(), turn=2)
    assert 'id="source-2-1"' in block
    assert '<a href="https://example.org/a?x=1&amp;y=2" target="_blank"' in block
    assert "Talks &amp; treaties" in block and "2024-03-05 · Wire" in block
    assert "<mark>The &lt;key&gt; sentence.</mark>" in block
    assert "When do &lt;talks&gt; start?" in block


def test_only_web_urls_become_links():
    block = render.sources_block(answer(citations=(citation(url="javascript:alert(1)"),)), turn=1)
    assert "javascript:" not in block and '<a href="article/a1" target="_blank"' in block  # the stored copy
    assert "javascript:" not in render.api_markdown(answer(citations=(citation(url="javascript:alert(1)"),)))


def test_a_local_file_links_to_its_stored_text_and_shows_its_name_and_no_undated():
    local = citation(url="", source="", file="harbour notes.txt", published=None, article_id="a/../1 x")
    block = render.sources_block(answer(citations=(local,)), turn=1)
    assert '<a href="article/a%2F..%2F1%20x" target="_blank" rel="noopener noreferrer">' in block
    assert '<div class="nq-meta">harbour notes.txt</div>' in block and "undated" not in block
    dated = render.sources_block(answer(citations=(citation(source=""),)), turn=1)
    assert '<div class="nq-meta">2024-03-05 · a.txt</div>' in dated


def test_sources_folded_under_an_answer_carry_no_anchors():
    folded = render.inline_sources(answer())
    assert folded.startswith('\n\n<details class="nq-inline-sources"><summary>Sources (1)</summary>')
    assert "<mark>The &lt;key&gt; sentence.</mark>" in folded and ' id="' not in folded


def test_answer_without_citations_says_so_and_panel_lists_newest_first():
    block = render.sources_block(answer(text="Not in the articles.", citations=()), turn=1)
    assert "No source cited." in block
    panel = render.sources_panel(["<p>first</p>", "<p>second</p>"])
    assert panel.index("second") < panel.index("first")


def test_chat_markdown_shows_warnings_after_the_answer():
    text = render.chat_markdown(
        answer(warnings=["the LLM could not answer: timed out"], backend="extractive (fallback: timed out)"), turn=1
    )
    assert text.startswith("Talks start [[1]](#source-1-1).")
    assert "⚠ The LLM could not answer: timed out" in text


def test_chat_markdown_says_what_a_follow_up_was_read_as():
    follow_up = Answer(
        question="Who said that?",
        answer="The Russian leader said it. [1]",
        refused=False,
        citations=(citation(),),
        backend="extractive",
        timings={},
        standalone_question="Who said that? (talks <start> in Geneva)",
    )
    assert render.chat_markdown(follow_up, turn=2).endswith("\n\n*Read as: Who said that? (talks \\<start> in Geneva)*")
    assert "Read as" not in render.chat_markdown(answer(), turn=1)


def test_chat_markdown_bolds_the_asked_for_phrase_where_the_answer_quotes_its_sentence():
    geneva = citation(
        passage="Talks are set. They will be in Geneva.", sentence="They will be in Geneva.", highlight=(16, 22)
    )
    text = render.chat_markdown(answer("Talks are near. They will be in Geneva. [1]", citations=(geneva,)), turn=1)
    assert text == "Talks are near. They will be in **Geneva**. [[1]](#source-1-1)"
    # A sentence split with its leading space still places the phrase; a reworded answer bolds nothing.
    spaced = citation(passage="Set. They meet in Geneva.", sentence=" They meet in Geneva.", highlight=(14, 20))
    assert render.phrase_spans(answer("They meet in Geneva. [1]", citations=(spaced,))) == [(13, 19)]
    assert render.chat_markdown(answer("Geneva hosts them [1].", citations=(geneva,)), turn=1) == (
        "Geneva hosts them [[1]](#source-1-1)."
    )


def test_source_card_makes_the_asked_for_phrase_strong_and_keeps_everything_escaped():
    hostile = citation(
        title="<script>alert(1)</script>", passage="<b>Before</b>. The <key> sentence. After.", highlight=(4, 9)
    )
    html = render.highlighted_passage(hostile)
    assert html == (
        '&lt;b&gt;Before&lt;/b&gt;. <mark>The <strong class="nq-answer-phrase">&lt;key&gt;</strong> '
        "sentence.</mark> After."
    )
    block = render.sources_block(answer(citations=(hostile,)), turn=1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in block and "<script>" not in block
    assert "<strong" not in render.highlighted_passage(citation())


def test_closest_passages_of_a_refusal_in_its_dict_and_none_for_an_answer():
    passages = [passage(1, text="word " * 100), passage(2, text="Talks.", published=None), passage(3), passage(4)]
    closest = refusal(*passages).as_dict()["closest"]
    assert [p["rank"] for p in closest] == [1, 2, 3]
    assert closest[1] == {
        "rank": 2,
        "article_id": "a2",
        "title": "Talks & treaties",
        "published": None,
        "source": "Wire",
        "url": "https://example.org/a?x=1&y=2",
        "file": "a2.txt",
        "text": "Talks.",
    }
    assert closest[0]["published"] == "2024-03-05"
    assert closest[0]["text"].endswith("word…") and len(closest[0]["text"]) <= 301
    assert answer(passages=[passage(1)]).as_dict()["closest"] == []


def test_refusal_shows_the_closest_articles_as_no_answer_with_safe_links():
    block = render.sources_block(
        refusal(
            passage(1),
            passage(
                2, title="<img src=x onerror=alert(1)>", text="<script>x</script> & more", url="javascript:alert(1)"
            ),
        ),
        turn=3,
    )
    assert "Closest articles (not an answer)" in block and "No source cited." not in block
    assert block.count('class="nq-source nq-closest"') == 2
    assert '<a href="https://example.org/a?x=1&amp;y=2" target="_blank"' in block
    assert "javascript:" not in block and "<img" not in block and "<script>" not in block
    assert "&lt;script&gt;x&lt;/script&gt; &amp; more" in block and "2024-03-05 · Wire" in block
    assert "No source cited." in render.sources_block(refusal(), turn=1)


def test_api_markdown_lists_sources_by_title_after_the_answer():
    text = render.api_markdown(answer(citations=(citation(), citation(2, url="", source=""))))
    assert text.splitlines() == [
        "Talks start [1].",
        "",
        "**Sources**",
        "",
        "[1] [Talks & treaties](https://example.org/a?x=1&y=2) (2024-03-05, Wire)",
        "[2] Talks & treaties (2024-03-05)",
    ]


def test_api_markdown_keeps_the_warnings():
    text = render.api_markdown(
        answer(warnings=['quotation not found in the passages: "ten days"'], citations=(citation(),))
    )
    assert text.startswith('Talks start [1].\n\n> ⚠ Quotation not found in the passages: "ten days"\n\n')
    assert text.endswith("(2024-03-05, Wire)")


def checked_answer() -> Answer:
    text = "Talks start in **spring** [1]. They last ten days [1]. Both sides agreed. [1]"
    return Answer(
        question="When do talks start?",
        answer=text,
        refused=False,
        citations=(citation(),),
        backend="openai:model",
        timings={},
        warnings=("1 sentence not found in the articles",),
        sentences=(
            SentenceSupport("Talks start in **spring**.", (1,), True, "Talks may start in spring."),
            SentenceSupport("They last ten days.", (1,), False, ""),
            SentenceSupport("Both sides agreed.", (1,), True, "Both sides agreed."),
        ),
    )


def test_chat_markdown_badges_the_sentence_no_passage_says_after_its_marker():
    text = render.chat_markdown(checked_answer(), turn=3)
    badge = '<span class="nq-unsupported">not found in the articles</span>'
    assert text.startswith(  # the LLM's own ** shown as written
        rf"Talks start in \*\*spring\*\* [[1]](#source-3-1). They last ten days [[1]](#source-3-1). {badge} Both sides"
    )
    assert text.count(badge) == 1
    assert "⚠ 1 sentence not found in the articles" in text


def test_api_markdown_marks_the_sentence_no_passage_says_in_plain_text():
    text = render.api_markdown(checked_answer())
    assert text.startswith(
        r"Talks start in \*\*spring\*\* [1]. They last ten days [1]. (not found in the articles) Both sides agreed. [1]"
        "\n\n"
    )
    assert render.api_markdown(answer()).startswith("Talks start [1].\n\n")  # nothing checked, nothing marked


def test_notes_go_in_at_their_positions_after_a_closing_and_before_an_opening():
    assert render.mark_phrases("ab cd ef", [(3, 5)], "<", ">", notes=[(5, "!"), (3, "?"), (8, ".")]) == "ab ?<cd>! ef."
    assert render.mark_phrases("ab cd ef", [], "<", ">", since=4, notes=[(2, "?"), (6, "!")]) == "d !ef"


def test_status_line_is_one_short_line():
    assert render.status_line("extractive", 1) == "extractive · 1 article indexed"
    assert render.status_line("ollama:llama3.2", 3) == "ollama:llama3.2 · 3 articles indexed"
    assert render.status_line("extractive (fallback: openai:m: cannot reach the server (Connection error.))", 2) == (
        "extractive (fallback) · 2 articles indexed"
    )
    assert render.status_line("llamacpp:/home/ann/models/tiny.gguf", 1).startswith("llamacpp:tiny.gguf · ")
    assert "Library tab" in render.status_line("extractive", 0)
    assert "NEWSQA_MODELS_FOLDER" in render.MODELS_HINT and "NEWSQA_OPENAI_BASE_URL" in render.MODELS_HINT


def test_article_rows_filter_by_every_search_word():
    articles = [
        stored("Probe lands on Mars", date(2024, 5, 2), "Space Wire", "m1"),
        stored("Rain in Spain", None, "", "s1"),
    ]
    assert library.article_rows(articles, "mars WIRE") == [["Probe lands on Mars", "2024-05-02", "Space Wire", 2, "m1"]]
    assert library.article_rows(articles, "spain")[0][1:4] == ["", "s1.txt", 2]
    assert len(library.article_rows(articles)) == 2
    assert library.source_names(articles) == ["Space Wire"]


@pytest.mark.parametrize(
    "title, question",
    [
        (
            "Russia urges West to move quickly to guarantee Ukraine won't join NATO",
            "What is the latest on West, Ukraine and NATO?",
        ),
        ("Drillers reach Lake Vostok water", "What is the latest on Lake Vostok?"),
        ("Vladimir Putin says U.S. must act", "What is the latest on Vladimir Putin and U.S.?"),
        ("Tram line opens", "What happened: tram line opens?"),
        ("Ferry Names A New Captain", "What happened: Ferry Names A New Captain?"),  # title case names nothing
        ("the harbour board met again on tuesday to talk about the pier and its future", None),
    ],
)
def test_an_example_question_is_whole_and_short(title: str, question: str | None):
    assert library.example_question(title) == question


def test_example_questions_come_from_the_newest_titles():
    towns = ["Galway", "Cork", "Sligo", "Tralee", "Ennis"]
    articles = [stored(f"Storm hits {town}", date(2024, 1, n)) for n, town in zip(range(5, 0, -1), towns)]
    articles.insert(1, stored("Storm hits Galway again", date(2024, 1, 4)))  # the same question once
    assert library.example_questions(articles, count=3) == [
        "What is the latest on Galway?",
        "What is the latest on Cork?",
        "What is the latest on Sligo?",
    ]


def test_pasted_text_is_one_file_per_title(tmp_path: Path):
    settings = Settings(index=tmp_path)
    first = library.store_pasted("  Mars probe:  lands! ", "It landed.", settings)
    again = library.store_pasted("Mars probe: lands!", "It landed, and sent images.", settings)
    assert first == again == str(tmp_path / "library" / "mars-probe-lands.txt")
    assert Path(again).read_text() == "Mars probe: lands!\nIt landed, and sent images.\n"


@pytest.mark.parametrize(
    "title, text, reason",
    [("", "text", "title"), ("Title", "  ", "text"), ("Big", "x" * 1_100_000, "over the 1 MB limit")],
)
def test_pasted_text_refused_with_a_reason(tmp_path: Path, title: str, text: str, reason: str):
    with pytest.raises(ValueError, match=reason):
        library.store_pasted(title, text, Settings(index=tmp_path, max_file_mb=1))
    assert not (tmp_path / "library").exists() or not any((tmp_path / "library").iterdir())


def test_uploads_are_kept_under_their_name_and_content_hash(tmp_path: Path):
    uploads = []
    for folder, text in [
        ("abc123", "# Story\n\nText."),
        ("def456", "# Story\n\nOther text."),
        ("0a1b2c", "# Story\n\nText."),
    ]:
        upload = tmp_path / "cache" / folder / "story.md"
        upload.parent.mkdir(parents=True)
        upload.write_text(text)
        uploads.append(str(upload))
    first, other, same = library.store_uploads(uploads, Settings(index=tmp_path / "index"))
    assert Path(first).parent == tmp_path / "index" / "library"
    assert re.fullmatch(r"story-[0-9a-f]{12}\.md", Path(first).name)
    assert first != other and first == same  # another text is another file; the same text, the same file
    assert Path(first).read_text() == "# Story\n\nText." and Path(other).read_text() == "# Story\n\nOther text."


def test_only_http_urls_are_fetched_never_server_paths():
    urls, others = library.split_urls("https://a.example/x\n/etc/passwd  http://b.example/feed.xml file:///x")
    assert urls == ["https://a.example/x", "http://b.example/feed.xml"]
    assert others == ["/etc/passwd", "file:///x"]


def test_auth_is_user_colon_password():
    assert parse_auth("ann:s3:cret") == ("ann", "s3:cret")
    assert parse_auth(None) is None
    for bad in ("ann", ":pw", "ann:"):
        with pytest.raises(ValueError, match="USER:PASS"):
            parse_auth(bad)


def test_the_page_opens_in_a_browser_only_where_there_is_a_display(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "NEWSQA_OPEN_BROWSER"):
        monkeypatch.delenv(name, raising=False)
    assert not wants_browser()
    monkeypatch.setenv("DISPLAY", ":0")
    assert wants_browser()
    monkeypatch.setenv("NEWSQA_OPEN_BROWSER", "0")
    assert not wants_browser()


def test_a_taken_port_is_refused_before_anything_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="the port is in use"):
            check_free("127.0.0.1", taken.getsockname()[1])


# What articles held that the chat rendered as markup: a beacon as an HTML image and as a Markdown one,
# an overlay over the page, a fake login, a link; and more Markdown that is not the answer's own.
HOSTILE = (
    '<img src="http://beacon.example/a.png">',
    "![x](http://beacon.example/b.png)",
    '<div style="position:fixed;inset:0;z-index:99999">covered</div>',
    '<form action="http://beacon.example/login"><input type="password"></form>',
    "[click](http://beacon.example/c)",
    "<http://beacon.example/d> www.beacon.example/e",
    "*em* `code` # heading $$x$$ &lt;img src=x&gt;",
)


def commonmark_html(markdown: str) -> str:
    """The Markdown as HTML, raw HTML let through, as the chat's Markdown renderer does before its
    sanitizer: what could become markup."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


@pytest.mark.parametrize("piece", HOSTILE)
def test_article_text_in_an_answer_is_shown_as_written_and_the_answers_own_markup_kept(piece):
    sentence = f"They meet in Geneva {piece} today."
    quoted = citation(passage=f"Set. {sentence}", sentence=sentence, highlight=(13, 19))
    checked = Answer(
        question="Where?",
        answer=f"{sentence} [1] Both agreed [1].",
        refused=False,
        citations=(quoted,),
        backend="extractive",
        timings={},
        standalone_question=f"Where? {piece}",
        warnings=(f"quotation not found: {piece}",),
        sentences=(SentenceSupport(sentence, (1,), True, sentence), SentenceSupport("Both agreed.", (1,), False, "")),
    )
    html = commonmark_html(render.chat_markdown(checked, turn=2))
    tags = re.findall(r"<[^>]+>", html)
    assert not [tag for tag in tags if re.match(r"</?(img|form|input|div|code|h1|del)\b", tag) or "beacon" in tag]
    assert not [tag for tag in tags if "style=" in tag] and tags.count("<em>") == 1  # the read-as note's
    links = re.findall(r'<a href="([^"]*)"', html)
    assert links == ["#source-2-1", "#source-2-1"]  # the markers', nothing of the article's
    assert "<strong>Geneva</strong>" in html and html.count('<span class="nq-unsupported">') == 1
    # The text reads as the article wrote it: every character there, HTML-escaped for the page.
    text = re.sub(r"<[^>]+>", "", html).replace("&amp;", "&")
    visible = piece.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert text.count(visible) == 3  # in the answer, the read-as note and the warning


def test_a_blank_line_in_a_passage_does_not_end_the_inline_sources_html():
    """A passage of two paragraphs apart: Markdown reads again after a blank line, where an image in
    the passage would be rendered, so the folded sources keep their line breaks as references."""
    passage = "The pier opens.\n\n![x](http://beacon.example/b.png)\r\rMore."
    cited = answer(citations=(citation(passage=passage, sentence="The pier opens."),))
    html = commonmark_html("Answer.\n\n" + render.inline_sources(cited))
    assert "<img" not in html and "\n\n" not in render.inline_sources(cited)[2:]
    assert "The pier opens.</mark>&#10;&#10;![x](http://beacon.example/b.png)&#13;&#13;More." in html


# A sentence as news prints it: nothing in it makes markup, so nothing in it is escaped.
ORDINARY = """U.S. President Joe Biden's "severe consequences" warning, 3.5% (up from 2.1%) - Jan. 10; AT&T's Q&A, $5 and $10, #1 #MeToo, 4 > 3, @POTUS, e.g. (a) 1.5 + 2 = 3.5."""


def test_an_ordinary_sentence_is_copied_from_the_chat_as_the_article_wrote_it():
    """The chat's copy button copies a message's Markdown: an answer quoting a sentence holds no
    backslash, before or after its marker, and still renders as the sentence."""
    quoted = citation(passage=f"Set. {ORDINARY}", sentence=ORDINARY)
    markdown = render.chat_markdown(answer(f"{ORDINARY} [1]", citations=(quoted,)), turn=1)
    assert markdown == f"{ORDINARY} [[1]](#source-1-1)" and render.unlinked_markdown(ORDINARY) == ORDINARY
    html = commonmark_html(markdown)
    assert re.sub(r"<[^>]+>", "", html).replace("&amp;", "&").replace("&quot;", '"').replace("&gt;", ">") == (
        f"{ORDINARY} [1]\n"
    )


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a <b> [c](d) ![e](f)", r"a \<b> \[c\]\(d) !\[e\]\(f)"),
        (r"*em* _em_ `code` ~del~ \[", r"\*em\* \_em\_ \`code\` \~del\~ \\\["),
        ("&lt;img&gt; &#60; AT&T", r"&lt\;img&gt\; &#60\; AT&T"),  # a reference shown as written
        ("https://a.example www.b.example c@d.example", r"https:/\/a.example www\.b.example c\@d.example"),
        ("[1](http://e) [2]: f [3, 4] [x]", r"[1]\(http:/\/e) [2]\: f [3, 4] \[x\]"),  # the markers kept
        (
            "# h\n- a\n  1. b\n+ c\n> q\n===\n| t |\n:-|-:\n2)",
            "\\# h\n\\- a\n  1\\. b\n\\+ c\n\\> q\n\\===\n\\| t |\n\\:-|-:\n2\\)",
        ),
        ("3.5%\n1.5 m", "3.5%\n1.5 m"),  # a number at a line's start is no list
    ],
)
def test_only_what_would_make_markup_is_escaped(text, escaped):
    assert render.unlinked_markdown(text) == escaped
    assert not re.findall(r"<(?!/?p>)[^>]+>", commonmark_html(escaped))  # paragraphs only


def test_a_streamed_answer_is_escaped_as_the_start_of_its_final_text():
    """The API sends the escaped text so far and then what follows it: each prefix's escaping must be
    the start of the whole's (an unclosed "[" is held back by the API, as a marker may follow)."""
    text = f"{ORDINARY}\n1. <b>x</b> [1]: www.e.example [2](f) ![g](h) &lt; **i** https://j\n- k"
    whole = render.unlinked_markdown(text)
    for end in range(len(text)):
        so_far, opening = text[:end], text[:end].rfind("[")
        if opening < 0 or "]" in so_far[opening:]:
            assert whole.startswith(render.unlinked_markdown(so_far)), so_far


def test_a_marker_right_after_an_exclamation_mark_stays_a_link():
    assert render.answer_markdown("Go![1] Stop!", turn=1) == "Go\\![[1]](#source-1-1) Stop!"
