"""A chat page safe to share: no open page on a network address, no password in the process list,
guessing throttled (more of it in tests/test_throttle.py), and uploads of the same name kept apart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import cli
from app.ui import auth, server
from app.ui.auth import choose_login, login_check, read_auth_file
from app.ui.page import Page
from tests.conftest import free_port
from tests.test_ui_page import no_progress


@pytest.fixture
def chat_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple]:
    """`newsqa chat` up to serving: the (host, credentials) it would serve with, nothing served."""
    monkeypatch.delenv("NEWSQA_AUTH", raising=False)
    monkeypatch.setenv("NEWSQA_CONFIG", str(tmp_path / "no-config.toml"))
    calls = []
    monkeypatch.setattr(server, "serve", lambda engine, host, port, credentials: calls.append((host, credentials)))
    return calls


def chat(tmp_path: Path, *args: str) -> int:
    return cli.main(["--index", str(tmp_path / "index"), "chat", *args])


def auth_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "login"
    path.write_text(text)
    path.chmod(mode)
    return path


# -- who may sign in


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_may_be_served_without_a_login(host: str):
    assert choose_login(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "newsqa.example.org"])
def test_a_network_address_needs_a_login_or_no_auth_on_purpose(host: str):
    with pytest.raises(ValueError, match="without a login: give --auth-file FILE or NEWSQA_AUTH, or --no-auth"):
        choose_login(host)
    assert choose_login(host, no_auth=True) is None
    assert choose_login(host, configured="ann:s3cret") == ("ann", "s3cret")


def test_the_command_line_login_comes_before_the_configured_one(tmp_path: Path):
    assert choose_login("0.0.0.0", auth="bob:pw", configured="ann:s3cret") == ("bob", "pw")
    path = auth_file(tmp_path, "cy:pw2\n")
    assert choose_login("0.0.0.0", auth_file=path, configured="ann:s3cret") == ("cy", "pw2")
    assert choose_login("0.0.0.0", no_auth=True, configured="ann:s3cret") is None


def test_chat_on_a_network_address_without_a_login_is_refused_in_one_line(tmp_path: Path, chat_calls, capsys):
    assert chat(tmp_path, "--host", "0.0.0.0") == 2
    err = capsys.readouterr().err
    assert err.startswith("newsqa: --host 0.0.0.0 would serve the page to the network without a login")
    assert err.count("\n") == 1 and chat_calls == []

    assert chat(tmp_path, "--host", "0.0.0.0", "--no-auth") == 0
    assert chat(tmp_path, "--host", "127.0.0.1") == 0
    assert chat_calls == [("0.0.0.0", None), ("127.0.0.1", None)]


def test_chat_takes_the_login_from_newsqa_auth(tmp_path: Path, chat_calls, capsys, monkeypatch):
    monkeypatch.setenv("NEWSQA_AUTH", "ann:s3cret")
    assert chat(tmp_path, "--host", "0.0.0.0") == 0
    assert chat_calls == [("0.0.0.0", ("ann", "s3cret"))]
    assert capsys.readouterr().err == ""


def test_a_password_on_the_command_line_is_warned_about(tmp_path: Path, chat_calls, capsys):
    assert chat(tmp_path, "--host", "0.0.0.0", "--auth", "ann:s3cret") == 0
    assert chat_calls == [("0.0.0.0", ("ann", "s3cret"))]
    assert "warning: --auth shows the password to anyone who can list processes" in capsys.readouterr().err


def test_chat_takes_the_login_from_an_auth_file(tmp_path: Path, chat_calls, capsys):
    path = auth_file(tmp_path, "ann:s3 cret:x\n")
    assert chat(tmp_path, "--host", "0.0.0.0", "--auth-file", str(path)) == 0
    assert chat_calls == [("0.0.0.0", ("ann", "s3 cret:x"))]
    assert capsys.readouterr().err == ""


def test_login_options_exclude_each_other(tmp_path: Path, chat_calls):
    with pytest.raises(SystemExit) as exit:
        chat(tmp_path, "--auth", "ann:pw", "--no-auth")
    assert exit.value.code == 2 and chat_calls == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_an_auth_file_open_to_other_users_is_refused(tmp_path: Path, chat_calls, capsys, mode: int):
    path = auth_file(tmp_path, "ann:s3cret\n", mode)
    assert chat(tmp_path, "--host", "0.0.0.0", "--auth-file", str(path)) == 2
    assert capsys.readouterr().err == (
        f"newsqa: the auth file {path} is open to other users (mode {mode:o}); run: chmod 600 {path}\n"
    )
    assert chat_calls == []


@pytest.mark.parametrize(
    "text, reason",
    [
        ("ann\n", "USER:PASS"),
        ("ann:pw\nbob:pw\n", "one USER:PASS line"),
        ("\n", "one USER:PASS line"),
        (":pw", "USER:PASS"),
    ],
)
def test_a_malformed_auth_file_is_refused_with_a_reason(tmp_path: Path, text: str, reason: str):
    with pytest.raises(ValueError, match=f"the auth file .*{reason}"):
        read_auth_file(auth_file(tmp_path, text))


def test_a_missing_auth_file_is_refused_with_a_reason(tmp_path: Path):
    with pytest.raises(ValueError, match="cannot read the auth file .*No such file"):
        read_auth_file(tmp_path / "absent")


def test_login_check_wants_both_parts_exactly():
    check = login_check(("ann", "s3cret"))
    assert check("ann", "s3cret")
    for user, password in [("ann", "s3cre"), ("ann", "s3cret "), ("an", "s3cret"), ("bob", "s3cret"), ("", "")]:
        assert not check(user, password)


# -- how fast they may guess: the real page login, served on 127.0.0.1


@pytest.fixture
def login_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import gradio as gr

    monkeypatch.setattr(auth, "LOGIN_BACKOFF_SECONDS", 3.0)
    with gr.Blocks() as blocks:
        gr.Markdown("behind the login")
    url = server.launch(blocks, "127.0.0.1", free_port(), auth.Login(("ann", "s3cret")), max_file_bytes=1000)
    yield url + "login"
    blocks.close()


def login(url: str, password: str, client_address: str = "127.0.0.1") -> httpx.Response:
    """POST the login form as Gradio's page does, from `client_address` (any 127.x is this machine)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=client_address)) as client:
        return client.post(url, data={"username": "ann", "password": password})


@pytest.mark.slow
def test_repeated_wrong_passwords_make_the_client_wait(login_url: str):
    guesses = [f"guess-{n}" for n in range(auth.LOGIN_ATTEMPTS)]
    assert [login(login_url, guess).status_code for guess in guesses] == [400] * 5
    refused = login(login_url, "guess-new")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3"
    assert refused.json()["detail"] == "Too many wrong logins: try again in 3 s."
    assert login(login_url, "s3cret").status_code == 429  # the right password too, until the wait ends
    assert login(login_url, "s3cret", client_address="127.0.0.2").status_code == 200  # another client is not held

    time.sleep(3.2)
    accepted = login(login_url, "s3cret")
    assert accepted.status_code == 200 and accepted.json() == {"success": True}


@pytest.mark.slow
def test_a_successful_login_gives_a_guesser_no_fresh_allowance(login_url: str):
    """On a shared address the right user signs in again and again: a guesser beside them must not
    start afresh each time."""
    assert [login(login_url, f"guess-{n}").status_code for n in range(auth.LOGIN_ATTEMPTS - 1)] == [400] * 4
    assert login(login_url, "s3cret").status_code == 200
    assert login(login_url, "guess-last").status_code == 400
    assert login(login_url, "guess-after").status_code == 429


@pytest.mark.slow
def test_gradio_s_cancel_and_reset_want_the_login_and_its_monitoring_is_off(login_url: str):
    root = login_url.removesuffix("login")
    cancel = {"session_hash": "abc", "fn_index": 0, "event_id": "e1"}
    with httpx.Client() as stranger:
        assert stranger.post(f"{root}gradio_api/cancel", json=cancel).status_code == 401
        assert stranger.post(f"{root}gradio_api/reset", json={"event_id": "e1"}).status_code == 401
        assert stranger.post(f"{root}gradio_api/reset/", json={"event_id": "e1"}).status_code == 401
    with httpx.Client() as signed_in:
        assert signed_in.post(login_url, data={"username": "ann", "password": "s3cret"}).status_code == 200
        assert signed_in.post(f"{root}gradio_api/cancel", json=cancel).json() == {"success": True}
        assert signed_in.post(f"{root}gradio_api/reset", json={"event_id": "e1"}).json() == {"success": True}
        monitoring = signed_in.get(f"{root}monitoring")
        assert monitoring.status_code == 403 and monitoring.json() == {"detail": "Monitoring is not enabled."}


# -- uploads of the same name


def write(folder: Path, name: str, text: str) -> str:
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    return str(folder / name)


@pytest.mark.slow
def test_two_uploads_of_report_txt_with_different_text_are_two_articles(engine, tmp_path: Path):
    page = Page(engine)
    ann = write(tmp_path / "upload-1", "report.txt", "Ferry strike ends\nThe ferry crews went back to work.\n")
    bob = write(tmp_path / "upload-2", "report.txt", "Harbour opens\nThe new harbour opened on Monday.\n")
    assert page.add_files([ann], progress=no_progress).startswith("1 added")
    assert page.add_files([bob], progress=no_progress).startswith("1 added")
    assert page.add_files([ann], progress=no_progress).startswith("0 added, 0 updated, 1 unchanged")
    by_title = {a.title: a for a in engine.articles()}
    assert sorted(by_title) == ["Ferry strike ends", "Harbour opens"]
    assert by_title["Ferry strike ends"].file != by_title["Harbour opens"].file

    library = engine.settings.index / "library"
    assert page.delete(by_title["Ferry strike ends"].id) == "Deleted: Ferry strike ends"
    assert [p.name for p in library.iterdir()] == [by_title["Harbour opens"].file]
    assert [a.title for a in engine.articles()] == ["Harbour opens"]
