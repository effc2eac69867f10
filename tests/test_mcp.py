"""The MCP server with the official MCP SDK's client: `newsqa mcp` over stdio as an MCP client starts
it (a subprocess), with and without --allow-writes; and in-process, its bounds and paging."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client import Transport
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from app.engine import Engine
from app.ui import mcp_server
from tests.conftest import SEED_FILE, free_port, make_settings, running
from tests.test_cli_ask import NEWSQA

QUESTION = "Where will the talks with the U.S. take place?"
KEY = "ann:s3cret"
READ_TOOLS = {"search_news", "ask", "list_articles", "get_article"}


def stdio_server(index: Path, *args: str, **settings: str) -> StdioServerParameters:
    """`newsqa --index INDEX mcp ARGS` as a client's configuration starts it, with only the NEWSQA_*
    `settings` given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")} | settings
    env |= {"XDG_CONFIG_HOME": str(index.parent / "config"), "NEWSQA_LLM": "extractive"}
    return StdioServerParameters(command=NEWSQA[0], args=[*NEWSQA[1:], "--index", str(index), "mcp", *args], env=env)


def session(server, calls):
    """Run `calls(client)` in a client session with `server`; what it returns."""

    async def run():
        async with Client(server, read_timeout_seconds=300) as client:
            return await calls(client)

    return asyncio.run(run())


def error_text(result) -> str:
    assert result.is_error
    return result.content[0].text


@pytest.mark.slow
def test_stdio_answers_searches_lists_and_reads_the_seed_article(seed_engine: Engine):
    async def calls(client: Client):
        tools = {t.name for t in (await client.list_tools()).tools}
        asked = await client.call_tool("ask", {"question": QUESTION})
        searched = await client.call_tool("search_news", {"query": "Geneva talks", "k": 2})
        listed = await client.call_tool("list_articles", {})
        article_id = listed.structured_content["articles"][0]["id"]
        got = await client.call_tool("get_article", {"article_id": article_id})
        read = await client.read_resource(f"newsqa://article/{article_id}")
        templates = await client.list_resource_templates()
        return tools, asked, searched, listed, got, read, templates

    tools, asked, searched, listed, got, read, templates = session(stdio_server(seed_engine.settings.index), calls)
    assert tools == READ_TOOLS  # no write tool without --allow-writes

    answer = asked.structured_content
    assert not asked.is_error and not answer["refused"]
    assert "Geneva" in answer["answer"]
    assert [c["file"] for c in answer["citations"]] == [SEED_FILE.name]
    assert answer["sentences"] and all(s["supported"] for s in answer["sentences"])

    passages = searched.structured_content["result"]
    # k counts chunks, and neighbouring chunks of one article come back as one passage
    assert 1 <= len(passages) <= 2 and any("Geneva" in p["text"] for p in passages)
    assert passages[0]["rank"] == 1 and passages[0]["file"] == SEED_FILE.name
    assert passages[0]["link"] == f"newsqa://article/{passages[0]['article_id']}"  # a file has no web page

    assert listed.structured_content["total"] == 1 and listed.structured_content["next_offset"] is None
    article = got.structured_content
    assert article["title"].startswith("Russia urges West") and "Geneva" in article["text"]
    assert not article["truncated"]
    assert read.contents[0].text == article["text"]
    assert [t.uri_template for t in templates.resource_templates] == ["newsqa://article/{article_id}"]


@pytest.mark.slow
def test_stdio_refuses_bad_arguments_in_one_line(seed_engine: Engine):
    async def calls(client: Client):
        too_many = await client.call_tool("search_news", {"query": "Geneva", "k": 500})
        not_an_id = await client.call_tool("get_article", {"article_id": "../../etc/passwd"})
        unknown = await client.call_tool("get_article", {"article_id": "0123abcd"})
        empty = await client.call_tool("ask", {"question": "   "})
        long = await client.call_tool("ask", {"question": "why " * 1000})
        backwards = await client.call_tool("list_articles", {"since": "2022-02-01", "until": "2022-01-01"})
        try:
            await client.read_resource("newsqa://article/0123abcd")
            missing = None
        except MCPError as error:
            missing = str(error)
        return too_many, not_an_id, unknown, empty, long, backwards, missing

    too_many, not_an_id, unknown, empty, long, backwards, missing = session(
        stdio_server(seed_engine.settings.index), calls
    )
    assert error_text(too_many) == "bad arguments to search_news: k: Input should be less than or equal to 20"
    assert error_text(not_an_id).startswith("bad arguments to get_article: article_id: String should match pattern")
    assert error_text(unknown).endswith("no indexed article has the id 0123abcd")
    assert error_text(empty).endswith("the question is empty")
    assert "question: String should have at most 2000 characters" in error_text(long)
    assert error_text(backwards).endswith("since (2022-02-01) is after until (2022-01-01)")
    assert missing == "no indexed article has the id 0123abcd"
    for result in (too_many, not_an_id, unknown, empty, long, backwards):
        assert "\n" not in error_text(result)


@pytest.mark.slow
def test_allow_writes_adds_pasted_text_and_keeps_private_addresses_out(tmp_path: Path):
    index = tmp_path / "index"
    text = {
        "title": "Harbour bridge reopens after repairs",
        "text": "The Kelvin harbour bridge reopened on Monday after eight months of repairs, the city said.",
    }

    async def calls(client: Client):
        tools = {t.name for t in (await client.list_tools()).tools}
        added = await client.call_tool("add_articles", {"texts": [text]})
        private = await client.call_tool("add_articles", {"urls": ["http://127.0.0.1:9/story.html"]})
        not_url = await client.call_tool("add_articles", {"urls": ["/etc/passwd"]})
        nothing = await client.call_tool("add_articles", {})
        asked = await client.call_tool("ask", {"question": "When did the Kelvin harbour bridge reopen?"})
        return tools, added, private, not_url, nothing, asked

    tools, added, private, not_url, nothing, asked = session(stdio_server(index, "--allow-writes"), calls)
    assert tools == READ_TOOLS | {"add_articles"}
    assert added.structured_content["counts"]["added"] == 1
    outcome = private.structured_content["articles"][0]
    assert outcome["status"] == "failed" and "127.0.0.1 is a loopback address" in outcome["reason"]
    assert error_text(not_url).endswith("not a http(s) URL: /etc/passwd")
    assert error_text(nothing).endswith("give at least one URL or text")
    assert "Monday" in asked.structured_content["answer"]
    assert Engine(make_settings(index)).articles()[0].title == text["title"]


@pytest.mark.slow
def test_a_list_comes_a_page_at_a_time_and_a_long_article_is_cut(engine: Engine):
    long_body = "The council met again. " * 8000  # about 180,000 characters
    for n in range(3):
        path = engine.settings.index.parent / f"story-{n}.txt"
        path.write_text(f"Council story {n}\n{long_body if n == 0 else 'The council met.'}\n", encoding="utf-8")
    engine.add([str(engine.settings.index.parent / f"story-{n}.txt") for n in range(3)], progress=False)

    async def calls(client: Client):
        first = await client.call_tool("list_articles", {"limit": 2})
        second = await client.call_tool("list_articles", {"limit": 2, "offset": 2})
        long_id = next(
            a["id"]
            for a in first.structured_content["articles"] + second.structured_content["articles"]
            if a["title"] == "Council story 0"
        )
        got = await client.call_tool("get_article", {"article_id": long_id})
        return first, second, got

    first, second, got = session(mcp_server.build_server(engine), calls)
    assert first.structured_content["total"] == 3 and first.structured_content["next_offset"] == 2
    assert len(first.structured_content["articles"]) == 2
    assert len(second.structured_content["articles"]) == 1 and second.structured_content["next_offset"] is None
    assert got.structured_content["truncated"]
    assert len(got.structured_content["text"]) <= mcp_server.MAX_ARTICLE_CHARS + 1
    assert got.structured_content["text"].endswith("…")


@pytest.fixture(scope="module")
def chat_server(seed_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`newsqa chat --auth KEY` over the seed index, as a user starts it; its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env |= {"NEWSQA_LLM": "extractive", "NEWSQA_OPEN_BROWSER": "0"}
    env["NEWSQA_CONFIG"] = str(tmp_path_factory.mktemp("config") / "none.toml")
    port = free_port()
    args = ["--index", str(seed_engine.settings.index), "chat", "--port", str(port), "--auth", KEY]
    with running([*NEWSQA, *args], env, ready="ready in") as printed:
        assert f"MCP at http://127.0.0.1:{port}/mcp" in printed, printed
        yield f"http://127.0.0.1:{port}/mcp"


def over_http(url: str, **client_options) -> Transport:
    return streamable_http_client(url, http_client=httpx2.AsyncClient(timeout=300, **client_options))


@pytest.mark.slow
def test_http_serves_the_same_tools_behind_the_page_login(chat_server: str):
    async def calls(client: Client):
        tools = {t.name for t in (await client.list_tools()).tools}
        return tools, await client.call_tool("ask", {"question": QUESTION})

    for login in ({"headers": {"Authorization": f"Bearer {KEY}"}}, {"auth": httpx2.BasicAuth(*KEY.split(":"))}):
        tools, asked = session(over_http(chat_server, **login), calls)
        assert tools == READ_TOOLS
        assert "Geneva" in asked.structured_content["answer"]
        assert asked.structured_content["citations"][0]["file"] == SEED_FILE.name


@pytest.mark.slow
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer ann:wrong"}], ids=["no login", "wrong login"])
def test_http_without_the_login_is_refused(chat_server: str, headers: dict):
    refused = httpx2.post(chat_server, headers=headers | {"Accept": "application/json, text/event-stream"}, json={})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="newsqa"'
    assert "sign in" in refused.json()["error"] or "wrong login" in refused.json()["error"]
    # The SDK's client gets no further than the refusal (it reports an error response, not its status).
    with pytest.raises(ExceptionGroup) as failed:
        session(over_http(chat_server, headers=headers), lambda client: client.list_tools())
    assert failed.group_contains(MCPError, match="Server returned an error response", depth=2)


@pytest.mark.slow
def test_a_correct_client_keeps_answering_beside_one_with_a_stale_or_missing_key(chat_server: str):
    """Another client on the same address (an MCP client set up with an old password, or none yet)
    keeps calling; the right login still gets its answer. Distinct guesses are slowed: test_api's
    throttle tests."""
    for headers in [{"Authorization": "Bearer ann:old-password"}, {}] * 8:
        assert httpx2.post(chat_server, headers=headers, json={}).status_code == 401
    tools = session(
        over_http(chat_server, headers={"Authorization": f"Bearer {KEY}"}), lambda client: client.list_tools()
    )
    assert {t.name for t in tools.tools} == READ_TOOLS
