"""Decoding a fetched body's Content-Encoding (gzip, deflate, br, zstd) in bounded steps.

Bodies are decoded here, not by httpx, whose brotli and zstd decoders expand a whole network chunk
at once (3 KB of brotli gave 2 GB): each step of a decoder gives at most DECODE_PIECE bytes, so the
reader can hold the decoded body to its size limit as it grows. Each decoder takes and gives an
iterator of byte strings.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator

try:  # brotli and zstandard come with gradio and langsmith; without them, br and zstd are not asked for
    import brotli
except ImportError:
    brotli = None
try:
    import zstandard
except ImportError:
    zstandard = None

DECODE_PIECE = 1 << 16
ZSTD_MAX_WINDOW = 1 << 23  # the 8 MB that RFC 9659 bounds a zstd Content-Encoding's window by


def _inflate(pieces: Iterable[bytes], wbits: int) -> Iterator[bytes]:
    """zlib, gzip or raw deflate data (as `wbits` says) decoded, DECODE_PIECE bytes at most a step."""
    decompressor = zlib.decompressobj(wbits)
    for piece in pieces:
        while True:
            out = decompressor.decompress(piece, DECODE_PIECE)
            piece = decompressor.unconsumed_tail
            if out:
                yield out
            if not piece and len(out) < DECODE_PIECE:  # a full output may have more behind it
                break
    if out := decompressor.flush():
        yield out


def _gunzip(pieces: Iterable[bytes]) -> Iterator[bytes]:
    return _inflate(pieces, zlib.MAX_WBITS | 16)


def _deflate(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """'deflate' is zlib data by the standard and raw deflate from some servers: the header tells."""
    pieces = iter(pieces)
    first = next(pieces, b"")
    wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and int.from_bytes(first[:2]) % 31 == 0
    return _inflate(itertools.chain([first], pieces), zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def _unbrotli(pieces: Iterable[bytes]) -> Iterator[bytes]:
    decompressor = brotli.Decompressor()
    for piece in pieces:
        out = decompressor.process(piece, output_buffer_limit=DECODE_PIECE)
        while True:
            if out:
                yield out
            if decompressor.can_accept_more_data():
                break
            out = decompressor.process(b"", output_buffer_limit=DECODE_PIECE)


class _Reader:
    """A file's read() over an iterator of byte strings, for a decoder that pulls its input."""

    def __init__(self, pieces: Iterable[bytes]):
        self._pieces = iter(pieces)
        self._left = b""

    def read(self, size: int) -> bytes:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._left = piece
        data, self._left = self._left[:size], self._left[size:]
        return data


def _unzstd(pieces: Iterable[bytes]) -> Iterator[bytes]:
    # zstandard's decompressobj gives all of a chunk's output at once; its stream reader reads to size.
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    reader = decompressor.stream_reader(_Reader(pieces), read_size=DECODE_PIECE, read_across_frames=True)
    while out := reader.read(DECODE_PIECE):
        yield out


DECODERS: dict[str, Callable[[Iterable[bytes]], Iterator[bytes]]] = {"gzip": _gunzip, "deflate": _deflate}
DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error,)
if brotli is not None:
    DECODERS["br"] = _unbrotli
    DECODE_ERRORS += (brotli.error,)
if zstandard is not None:
    DECODERS["zstd"] = _unzstd
    DECODE_ERRORS += (zstandard.ZstdError,)
