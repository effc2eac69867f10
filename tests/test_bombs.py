"""Compression bombs: a few KB that decode to 512 MiB, in each content encoding a server may send,
served by a real HTTP server on 127.0.0.1. The page's URL box and a followed feed refuse each at the
size limit, and the process that fetches them (a child, measured alone) grows by less than 100 MB.
Ordinary compressed pages still read."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import brotli
import pytest
import zstandard

from ingest.sources import MAX_ENCODINGS, Failure, Limits, Loader
from tests.test_fetch_limits import feed_of, serve

ROOT = Path(__file__).resolve().parent.parent
STORY = (Path(__file__).resolve().parent / "fixtures" / "articles" / "library_page.html").read_bytes()
STORY_TITLE = "City library reopens after two-year renovation"
BOMB_BYTES = 1 << 29  # decoded: far past the 20 MB limit and the 100 MB the fetching process may grow by
GROWTH_LIMIT = 100 * 2**20
OVER = "page is over the 20 MB limit (NEWSQA_MAX_FILE_MB)"


def _bomb(compress: Callable[[bytes], bytes], finish: Callable[[], bytes], head=b"<p>", unit=b"a", tail=b"") -> bytes:
    """`head`, BOMB_BYTES of `unit` over and over, then `tail`, compressed a MiB at a time (never whole
    in memory)."""
    block = unit * (2**20 // len(unit))
    body = (compress(block) for _ in range(BOMB_BYTES // len(block)))
    return b"".join([compress(head), *body, compress(tail), finish()])


def bombs() -> dict[str, tuple[str, bytes]]:
    """Path -> (Content-Encoding, body)."""
    gzipper = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    deflater = zlib.compressobj(6)
    squeezer = brotli.Compressor(quality=5)
    zstd = zstandard.ZstdCompressor(level=3).compressobj()
    gzipped = _bomb(gzipper.compress, gzipper.flush)
    return {
        "/bomb-gzip": ("gzip", gzipped),
        "/bomb-deflate": ("deflate", _bomb(deflater.compress, deflater.flush)),
        "/bomb-br": ("br", _bomb(squeezer.process, squeezer.finish)),
        "/bomb-zstd": ("zstd", _bomb(zstd.compress, zstd.flush)),
        "/bomb-gzip-gzip": ("gzip, gzip", gzip.compress(gzipped)),
    }


def feed_bomb() -> bytes:
    """A feed of BOMB_BYTES whose entries never end, as brotli."""
    squeezer = brotli.Compressor(quality=5)
    head, tail = feed_of([]).split(b"</channel>")
    return _bomb(squeezer.process, squeezer.finish, head, b"<item><title>x</title></item>", b"</channel>" + tail)


class Site(BaseHTTPRequestHandler):
    pages: dict[str, tuple[str, str, bytes]] = {}  # path -> (content type, content encoding, body)

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        content_type, encoding, body = self.pages.get(self.path, ("text/html", "", b"<h1>Not found</h1>"))
        self.send_response(200 if self.path in self.pages else 404)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the fetcher stopped reading at its limit
            pass

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def site():
    made = bombs()
    server, base = serve(Site)
    Site.pages = {path: ("text/html", encoding, body) for path, (encoding, body) in made.items()}
    Site.pages |= {
        "/bombs.rss": ("application/rss+xml", "", feed_of([base + path for path in made])),
        "/feed-bomb.rss": ("application/rss+xml", "br", feed_bomb()),
        "/story-gzip": ("text/html", "gzip", gzip.compress(STORY)),
        "/story-deflate": ("text/html", "deflate", zlib.compress(STORY)),
        "/story-raw-deflate": ("text/html", "deflate", _raw_deflate(STORY)),
        "/story-br": ("text/html", "br", brotli.compress(STORY)),
        "/story-zstd": ("text/html", "zstd", zstandard.ZstdCompressor().compress(STORY)),
        "/story-zstd-frames": ("text/html", "zstd", _frames(STORY)),
        "/story-gzip-br": ("text/html", "gzip, br", brotli.compress(gzip.compress(STORY))),
        "/story-identity": ("text/html", "identity", STORY),
        "/story-3-gzips": ("text/html", "gzip, gzip, gzip", gzip.compress(gzip.compress(gzip.compress(STORY)))),
        "/story-compress": ("text/html", "compress", STORY),
        "/story-broken-br": ("text/html", "br", b"not brotli at all" * 10),
    }
    yield base
    server.shutdown()
    server.server_close()


def _frames(data: bytes) -> bytes:
    """zstd in two frames, each half of `data`."""
    half = len(data) // 2
    return zstandard.compress(data[:half]) + zstandard.compress(data[half:])


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def load(url: str) -> list:
    with Loader(Limits(max_bytes=10**6, timeout=10)) as loader:
        return loader.load(url)


# -- ordinary compressed pages


@pytest.mark.parametrize(
    "path", ["/story-gzip", "/story-deflate", "/story-raw-deflate", "/story-br", "/story-zstd", "/story-gzip-br"]
)
def test_compressed_pages_are_read(site, path):
    [article] = load(site + path)
    assert article.title == STORY_TITLE
    assert article.body.startswith("The Northfield central library reopened")


def test_identity_and_zstd_frames_are_read(site):
    [whole] = load(f"{site}/story-identity")
    assert whole.title == STORY_TITLE
    [framed] = load(f"{site}/story-zstd-frames")
    assert framed.title == STORY_TITLE and framed.body == whole.body


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/story-3-gzips", f"more than {MAX_ENCODINGS} content encodings: gzip, gzip, gzip"),
        ("/story-compress", "unsupported content encoding 'compress'; supported: gzip, deflate, br, zstd"),
        ("/story-broken-br", "cannot decode the page (br): "),
    ],
)
def test_encodings_that_cannot_be_read_fail_in_one_line(site, path, reason):
    [result] = load(site + path)
    assert isinstance(result, Failure) and "\n" not in result.reason
    assert result.reason.startswith(reason)


# -- bombs, in a child process whose memory is its own


MEASURE = """
import json, os, sys

from app.engine import Engine
from app.feeds import FeedStore, refresh_all
from app.settings import Settings
from app.ui.page import Page

mode, index, base, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
engine = Engine(Settings(index=index, allow_private_urls=True))
page = Page(engine)
store = FeedStore(engine.settings)


def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak():
    # This process's own high-water mark (VmHWM). Not getrusage's ru_maxrss: Linux carries into it
    # the resident size of the process that started this one, so a large pytest parent would show.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def fetch(url):
    if mode == "page":
        return page.add_urls(url, progress=lambda *args, **kwargs: None)
    store.follow(url, every=3600)
    [result] = refresh_all(engine)
    store.unfollow(url)
    return result.line()


fetch(base + "/missing")  # the path's first use (the index opened, modules loaded) is not counted
for path in paths:
    before = resident()
    report = fetch(base + path)
    print(json.dumps({"path": path, "report": report, "growth": peak() - before}), flush=True)
"""


def measured(mode: str, site: str, paths: list[str], index: Path) -> dict[str, dict]:
    """Each path fetched in turn by one child; its report and how far the child's peak resident memory
    rose above what it held before (the peak is the whole run's so far: never less than the growth)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(index), site, *paths],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")},
            "NEWSQA_CONFIG": str(index.parent / "absent.toml"),
        },
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {record["path"]: record for record in map(json.loads, done.stdout.splitlines())}


BOMBS = ["/bomb-br", "/bomb-zstd", "/bomb-deflate", "/bomb-gzip", "/bomb-gzip-gzip"]


@pytest.mark.slow
def test_bombs_through_the_page_url_box(site, tmp_path):
    results = measured("page", site, BOMBS, tmp_path / "index")
    assert list(results) == BOMBS
    for path, result in results.items():
        assert result["report"].splitlines() == [
            "0 added, 0 updated, 0 unchanged, 0 duplicate, 1 failed",
            f"  failed: {site}{path}: {OVER}",
        ]
        assert result["growth"] < GROWTH_LIMIT, f"{path}: grew by {result['growth'] / 2**20:.0f} MiB"


@pytest.mark.slow
def test_bombs_through_a_followed_feed(site, tmp_path):
    results = measured("feed", site, ["/bombs.rss", "/feed-bomb.rss"], tmp_path / "index")
    linked = results["/bombs.rss"]["report"].splitlines()
    assert linked[0] == f"{site}/bombs.rss: refreshed; 5 new or changed entries, 0 added, 0 updated"
    assert sorted(linked[1:]) == sorted(f"  failed: {site}{path}: {OVER}" for path in BOMBS)
    assert results["/feed-bomb.rss"]["report"] == f"{site}/feed-bomb.rss: failed: {OVER}"
    for path, result in results.items():
        assert result["growth"] < GROWTH_LIMIT, f"{path}: grew by {result['growth'] / 2**20:.0f} MiB"
