"""Articles into passages that the embedding model reads whole.

Passages are whole sentences packed up to a token budget counted with the model's own tokenizer
(all-MiniLM-L6-v2 silently drops everything past 256 word pieces), with the last sentences of one
passage repeated at the head of the next, and the article's title and date at the top of the
embedded text so that a passage about "he" still knows which story it belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from app.documents import Article, Chunk
from app.sentences import Span, split_sentences

_WORD = re.compile(r"\S+")


def chunk_header(article: Article) -> str:
    dated = f" ({article.published.isoformat()})" if article.published else ""
    return f"{article.title}{dated}\n"


def chunk_article(
    article: Article,
    count_tokens: Callable[[list[str]], list[int]],
    max_tokens: int,
    overlap_tokens: int,
) -> list[Chunk]:
    """Pack the article's sentences into chunks of at most `max_tokens` word pieces, header included."""
    header = chunk_header(article)
    header_tokens = count_tokens([header])[0]
    budget = max(max_tokens - header_tokens, 16)
    spans = split_sentences(article.body)
    if not spans:
        return []
    sentences: list[Span] = []
    sizes: list[int] = []
    for span, size in zip(spans, count_tokens([article.body[s.start:s.end] for s in spans])):
        if size <= budget:
            sentences.append(span)
            sizes.append(size)
        else:
            for piece, piece_size in _split_long(article.body, span, count_tokens, budget):
                sentences.append(piece)
                sizes.append(piece_size)
    groups = _pack(sizes, budget, overlap_tokens)
    chunks = []
    for index, (first, last) in enumerate(groups):
        start, end = sentences[first].start, sentences[last].end
        text = article.body[start:end]
        chunks.append(Chunk(article=article, index=index, count=len(groups), text=text,
                            start=start, end=end, embed_text=header + text))
    return chunks


def _pack(sizes: Sequence[int], budget: int, overlap_tokens: int) -> list[tuple[int, int]]:
    """Greedy packing of sentence sizes into (first, last) index ranges, with sentence overlap."""
    groups: list[tuple[int, int]] = []
    first = 0
    while first < len(sizes):
        last, used = first, sizes[first]
        while last + 1 < len(sizes) and used + sizes[last + 1] <= budget:
            last += 1
            used += sizes[last]
        groups.append((first, last))
        if last + 1 >= len(sizes):
            break
        # Step back over whole sentences that fit the overlap, but always move forward.
        next_first, carried = last + 1, 0
        while next_first - 1 > first and carried + sizes[next_first - 1] <= overlap_tokens:
            next_first -= 1
            carried += sizes[next_first]
        # News sentences often outgrow a small overlap; the last one is still carried when it takes
        # at most half a chunk, so no boundary loses the thread of the story.
        if overlap_tokens and next_first == last + 1 and last > first and sizes[last] <= budget // 2:
            next_first = last
        first = next_first
    return groups


def _split_long(body: str, span: Span, count_tokens: Callable[[list[str]], list[int]],
                budget: int) -> list[tuple[Span, int]]:
    """A sentence too long for one chunk is cut at word boundaries into pieces that fit."""
    words = [Span(m.start(), m.end()) for m in _WORD.finditer(body, span.start, span.end)]
    sizes = count_tokens([body[w.start:w.end] for w in words])
    pieces: list[tuple[Span, int]] = []
    first, used = 0, 0
    for i, size in enumerate(sizes):
        if used + size > budget and i > first:
            pieces.append((Span(words[first].start, words[i - 1].end), used))
            first, used = i, 0
        used += size
    pieces.append((Span(words[first].start, words[-1].end), used))
    return pieces
