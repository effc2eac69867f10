"""Articles into passages that the embedding model reads whole.

Passages are whole sentences packed up to a token budget counted with the model's own tokenizer
(all-MiniLM-L6-v2 silently drops everything past 256 word pieces), with the last sentences of one
passage repeated at the head of the next. The repeated sentences are read with both passages (BM25,
the answer's context) but embedded with the first only: on realtimeqa_2022 that embeds 16% fewer
word pieces for the same retrieval and answers. Each passage's vector also holds its article's
title and date (ingest/chunk_vectors.py), so that a passage about "he" still knows which story it
belongs to; the header's word pieces count against the passage's budget, as if it were embedded
with every passage.

Passages are capped in characters as well (CHARS_PER_TOKEN a token of the budget): the tokenizer
reads a word over 100 characters as one unknown piece, so without the cap a text with no spaces
would become one passage of any length. Text that runs without spaces in a script of a word piece or
so a character (Chinese, Japanese, Thai; a run of punctuation) is cut at characters to the budget.
The tokenizer only ever sees texts under that cap, in batches, since tokenizing a long text takes
memory many times its size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

from app.documents import Article, Chunk
from app.sentences import Span, split_sentences

_WORD = re.compile(r"\S+")
# News text runs at 4 to 5 characters a word piece, and a whole passage of real text stays under 8;
# at 10 the cap changes no passage of it.
CHARS_PER_TOKEN = 10
_COUNT_BATCH = 1000  # texts a call to count_tokens, each under the character cap

Counter = Callable[[list[str]], list[int]]


def chunk_header(article: Article) -> str:
    dated = f" ({article.published.isoformat()})" if article.published else ""
    return f"{article.title}{dated}\n"


def chunk_article(
    article: Article,
    count_tokens: Counter,
    max_tokens: int,
    overlap_tokens: int,
) -> list[Chunk]:
    """Pack the article's sentences into chunks of at most `max_tokens` word pieces, header included,
    and of at most CHARS_PER_TOKEN characters for each word piece the text may take."""
    header = chunk_header(article)
    header_tokens = count_tokens([header])[0]
    budget = max(max_tokens - header_tokens, 16)
    max_chars = budget * CHARS_PER_TOKEN
    body = article.body
    spans = split_sentences(body)
    if not spans:
        return []
    sentences: list[Span] = []
    sizes: list[int] = []
    # Counted as needed, a batch at a time; a sentence over the character cap is not counted whole.
    counted = _count(count_tokens, (body[s.start : s.end] for s in spans if s.end - s.start <= max_chars))
    for span in spans:
        if span.end - span.start <= max_chars and (size := next(counted)) <= budget:
            sentences.append(span)
            sizes.append(size)
        else:
            for piece, piece_size in _split_long(body, span, count_tokens, budget, max_chars):
                sentences.append(piece)
                sizes.append(piece_size)
    groups = _pack(sentences, sizes, budget, max_chars, overlap_tokens)
    chunks = []
    embedded = -1  # the last sentence embedded with an earlier chunk
    for index, (first, last) in enumerate(groups):
        start, end = sentences[first].start, sentences[last].end
        # The sentences carried over from the chunk before are read with this one (BM25, passages)
        # but embedded only with the chunk they first appeared in: a fifth fewer word pieces to embed.
        fresh = max(first, embedded + 1)
        embedded = last
        chunks.append(
            Chunk(
                article=article,
                index=index,
                count=len(groups),
                text=body[start:end],
                start=start,
                end=end,
                embed_text=body[sentences[fresh].start : end],
                embed_tokens=sum(sizes[fresh : last + 1]),
            )
        )
    return chunks


def _count(count_tokens: Counter, texts: Iterable[str]) -> Iterator[int]:
    """The token count of each text, counted _COUNT_BATCH texts at a time."""
    texts = iter(texts)
    while batch := list(islice(texts, _COUNT_BATCH)):
        yield from count_tokens(batch)


def _pack(
    sentences: Sequence[Span], sizes: Sequence[int], budget: int, max_chars: int, overlap_tokens: int
) -> list[tuple[int, int]]:
    """Greedy packing of sentences into (first, last) index ranges, with sentence overlap."""

    def fits_chars(first: int, last: int) -> bool:
        return sentences[last].end - sentences[first].start <= max_chars

    groups: list[tuple[int, int]] = []
    first = 0
    while first < len(sizes):
        last, used = first, sizes[first]
        while last + 1 < len(sizes) and used + sizes[last + 1] <= budget and fits_chars(first, last + 1):
            last += 1
            used += sizes[last]
        groups.append((first, last))
        if last + 1 >= len(sizes):
            break

        # Step back over whole sentences that fit the overlap, but always move forward, and leave
        # room for the next new sentence, so that every chunk brings at least one.
        def room(carry_from: int, carried_tokens: int) -> bool:
            return carried_tokens + sizes[last + 1] <= budget and fits_chars(carry_from, last + 1)

        next_first, carried = last + 1, 0
        while (
            next_first - 1 > first
            and carried + sizes[next_first - 1] <= overlap_tokens
            and room(next_first - 1, carried + sizes[next_first - 1])
        ):
            next_first -= 1
            carried += sizes[next_first]
        # News sentences often outgrow a small overlap; the last one is still carried when it takes
        # at most half a chunk, so no boundary loses the thread of the story.
        if (
            overlap_tokens
            and next_first == last + 1
            and last > first
            and sizes[last] <= budget // 2
            and room(last, sizes[last])
        ):
            next_first = last
        first = next_first
    return groups


def _split_long(body: str, span: Span, count_tokens: Counter, budget: int, max_chars: int) -> list[tuple[Span, int]]:
    """A sentence too long for one chunk is cut at word boundaries into pieces that fit, and a word
    longer than a chunk's characters at characters. The words are read and counted a batch at a
    time: a sentence of millions of words would otherwise be held as millions of spans at once."""
    words = (
        Span(start, min(start + max_chars, m.end()))
        for m in _WORD.finditer(body, span.start, span.end)
        for start in range(m.start(), m.end(), max_chars)
    )
    pieces: list[tuple[Span, int]] = []
    first = last = None
    used = 0
    while batch := list(islice(words, _COUNT_BATCH)):
        for whole, whole_size in zip(batch, count_tokens([body[w.start : w.end] for w in batch])):
            for word, size in _fitted(body, whole, whole_size, count_tokens, budget):
                if first is not None and (used + size > budget or word.end - first.start > max_chars):
                    pieces.append((Span(first.start, last.end), used))
                    first, used = None, 0
                if first is None:
                    first = word
                last = word
                used += size
    pieces.append((Span(first.start, last.end), used))
    return pieces


def _fitted(body: str, word: Span, size: int, count_tokens: Counter, budget: int) -> Iterator[tuple[Span, int]]:
    """The word, or, when it holds more word pieces than the budget (Chinese, Japanese or Thai text
    without spaces, a run of punctuation: up to a word piece a character), its parts cut at characters,
    each of about a budget's share of its characters, recounted and cut again until each fits.
    A chunk of such a word would have gone to the model whole, and all past its window been lost."""
    pending = [(word, size)]
    while pending:
        span, size = pending.pop()
        if size <= budget or span.end - span.start == 1:
            yield span, size
            continue
        step = max(1, (span.end - span.start) * budget // size)
        parts = [Span(start, min(start + step, span.end)) for start in range(span.start, span.end, step)]
        sizes = count_tokens([body[p.start : p.end] for p in parts])
        pending += reversed(list(zip(parts, sizes)))  # the first part on top: parts come out in order
