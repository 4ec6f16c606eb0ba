"""Hostile input that reaches git or a revision's remote: option injection through zoo paths, URLs and
revisions (every git command line comes from one builder, gitcmd.argv), the ext:: transport, git servers
that never answer (a stall timeout, ZOO_NETWORK_TIMEOUT), a revision whose .dvc/config points the
user's credentials at another S3 endpoint, and a file or plain folder given as a zoo.

Everything is real: git repos in temp folders, TCP servers on 127.0.0.1 in threads, the `zoo` CLI
spawned only for the exit-code checks.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import PROJECT, git, run_zoo


@pytest.fixture
def marker(tmp_path) -> Path:
    """A file that exists only if an injected command ran."""
    return tmp_path / "INJECTED"


def _cache(home: Path) -> Path:
    return home / ".cache" / "checkpoint-zoo"


# ---- option injection into git -------------------------------------------------------------------

def _option_urls(marker: Path) -> list[str]:
    return [f"--upload-pack=touch {marker}", f"--upload-pack touch {marker}", f"--config=core.fsmonitor=touch {marker}",
            f"--template={marker.parent}", f"-u touch {marker}", f"-utouch {marker}", "-c", "--", "-"]


def test_payloads_are_live_controls(tmp_path, marker, empty_zoo):
    """The payload reaches a shell when git takes it as an option: what the refusals below prevent."""
    r = subprocess.run(["git", "clone", "-q", f"--upload-pack=touch {marker}; git-upload-pack", str(empty_zoo),
                        str(tmp_path / "c")], capture_output=True)
    assert r.returncode == 0 and marker.exists()


def test_option_like_zoo_urls_refused_before_git_runs(marker, isolated_env, monkeypatch, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UsageError

    monkeypatch.chdir(tmp_path)
    for url in _option_urls(marker):
        with pytest.raises(UsageError) as e:
            Zoo(url)
        message = str(e.value)
        assert "\n" not in message and repr(url) in message and "cannot be empty or begin with '-'" in message
        assert "give a zoo clone or a git URL" in message
    assert not marker.exists()
    assert not (_cache(isolated_env) / "repos").exists()  # git never ran: no mirror was even started


def test_option_like_revisions_refused(empty_zoo, marker, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UsageError

    out = tmp_path / "out"
    for source in (str(empty_zoo), empty_zoo.as_uri()):
        for rev in (f"--output={out}", "--all", "-h", "--git-dir", f"--upload-pack=touch {marker}"):
            with pytest.raises(UsageError, match=r"^revision .*: a revision cannot be empty or begin with '-'; "
                                                 r"give a branch, tag or commit \(`zoo versions` lists them\)$"):
                Zoo(source, rev=rev)
    assert not out.exists() and not marker.exists()
    assert Zoo(empty_zoo.as_uri(), rev="main").revision == git("rev-parse", "main", cwd=empty_zoo).strip()


def test_ext_transport_refused_and_off_in_every_git_call(marker, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UsageError
    from checkpoint_zoo.utils import gitcmd

    payload = f"ext::sh -c touch% {marker}"
    for url in (payload, payload.upper().replace("TOUCH", "touch"), "fd::3"):
        with pytest.raises(UsageError, match=r"git transport runs commands, not fetches"):
            Zoo(url)
    # reached past the URL check, git itself refuses the transport
    proc = gitcmd.run(tmp_path, "clone", operands=(payload, str(tmp_path / "dest")), check=False)
    assert proc.returncode != 0 and b"transport 'ext' not allowed" in proc.stderr
    assert not marker.exists() and not (tmp_path / "dest").exists()


def test_git_command_lines_come_from_one_builder():
    from checkpoint_zoo.utils import gitcmd

    assert gitcmd.argv("clone", "--mirror", operands=("-u x", "/d")) == [
        "git", "-c", "protocol.ext.allow=never", "clone", "--mirror", "--", "-u x", "/d"]
    assert gitcmd.argv("rev-parse", "--verify", operands=("--all",), end="--end-of-options")[-2:] == [
        "--end-of-options", "--all"]
    # nothing else in the package spawns git: every call goes through gitcmd
    spawners = []
    for path in sorted((PROJECT / "src" / "checkpoint_zoo").rglob("*.py")):
        text = path.read_text()
        if path.name != "gitcmd.py" and re.search(r"""["']git["']\s*,""", text):
            spawners.append(path.name)
    assert spawners == []


def test_cli_repo_option_injection_and_a_file_as_zoo(marker, tmp_path):
    r = run_zoo(f"-C=--upload-pack=touch {marker}", "ls", cwd=tmp_path)
    assert r.code == 2 and r.err.count("\n") == 1 and "cannot be empty or begin with '-'" in r.err, r.err
    assert r.out == "" and not marker.exists()
    r = run_zoo("-C", "/etc/passwd", "ls", cwd=tmp_path)
    assert r.code == 1 and r.err == "zoo ls: /etc/passwd: not a directory; give a zoo clone or a git URL\n"


# ---- not a directory, not a repository -----------------------------------------------------------

def test_file_missing_folder_and_plain_folder_named_clearly(tmp_path, isolated_env):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import NotAZooError

    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    plain = tmp_path / "etc"
    plain.mkdir()
    cases = {
        str(a_file): f"{a_file}: not a directory; give a zoo clone or a git URL",
        str(tmp_path / "nowhere"): f"{tmp_path / 'nowhere'}: no such directory; give a zoo clone or a git URL",
        plain.as_uri(): f"{plain.as_uri()}: not a git repository (",
    }
    for given, expected in cases.items():
        with pytest.raises(NotAZooError) as e:
            Zoo(given)
        assert str(e.value).startswith(expected) and "\n" not in str(e.value), str(e.value)
        assert "give a zoo clone or a git URL" in str(e.value) and "repository exists" not in str(e.value)
    repos = _cache(isolated_env) / "repos"
    assert not repos.exists() or list(repos.iterdir()) == []


# ---- git servers that never answer ---------------------------------------------------------------

class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def peers_gone(self, wait: float = 3.0) -> bool:
        """True when every client that connected has closed its end (its process is gone)."""
        for conn in self.conns:
            conn.settimeout(wait)
            try:
                while conn.recv(65536):
                    pass
            except TimeoutError:
                return False  # still open: a git child outlived the timeout
            except OSError:
                pass  # reset: the peer was killed
        return True

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_silent_git_server_times_out_and_leaves_nothing(silent, scheme, isolated_env, monkeypatch):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import RemoteUnreachableError, StorageError

    monkeypatch.setenv("ZOO_NETWORK_TIMEOUT", "2")
    url = f"{scheme}://127.0.0.1:{silent.port}/x" + (".git" if scheme == "http" else "")
    start = time.monotonic()
    with pytest.raises(RemoteUnreachableError) as e:
        Zoo(url)
    took = time.monotonic() - start
    assert isinstance(e.value, StorageError) and 1.9 < took < 6, took
    assert str(e.value) == (f"cannot reach {url}: no answer for 2 s; check the URL and the network, or allow a "
                            "slower server more time with ZOO_NETWORK_TIMEOUT=SECONDS")
    assert silent.conns, "git never connected: the timeout was not the server's silence"
    assert silent.peers_gone(), "a git child still holds the connection"
    assert list((_cache(isolated_env) / "repos").iterdir()) == []  # the temp mirror is gone


def test_silent_server_on_fetch_of_a_cached_mirror(silent, empty_zoo, isolated_env, monkeypatch):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import RemoteUnreachableError

    url = f"http://127.0.0.1:{silent.port}/zoo.git"
    mirror = _cache(isolated_env) / "repos" / f"{hashlib.sha256(url.encode()).hexdigest()[:24]}.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(empty_zoo), str(mirror)], check=True)
    git("remote", "set-url", "origin", url, cwd=mirror)
    before = git("for-each-ref", cwd=mirror)
    monkeypatch.setenv("ZOO_NETWORK_TIMEOUT", "1.5")
    start = time.monotonic()
    with pytest.raises(RemoteUnreachableError, match=r"^cannot reach .*: no answer for 1.5 s; .*ZOO_NETWORK_TIMEOUT"
                                                     r"=SECONDS; or set ZOO_OFFLINE=1 to use the cached copy$"):
        Zoo(url)
    assert time.monotonic() - start < 5
    assert silent.peers_gone()
    assert git("for-each-ref", cwd=mirror) == before
    assert [p for p in mirror.rglob("*") if p.name.endswith(".lock") or p.name.startswith("tmp_")] == []
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    assert [c.ref for c in Zoo(url).list()] == []  # the cached copy still serves


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan"])
def test_bad_network_timeout_value_named(value, monkeypatch):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UsageError

    monkeypatch.setenv("ZOO_NETWORK_TIMEOUT", value)
    with pytest.raises(UsageError, match=rf"^ZOO_NETWORK_TIMEOUT='{value}': not a number of seconds; set it to e\.g\. 60"):
        Zoo("http://127.0.0.1:9/x.git")


# ---- a revision's own S3 endpoint gets no credentials -----------------------------------------------

class RecordingEndpoint:
    """An HTTP endpoint on 127.0.0.1 that records every request head and answers 404 (nothing there, so
    the client gives up at once rather than retrying)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.heads: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                head = b""
                try:
                    while b"\r\n\r\n" not in head and (chunk := conn.recv(65536)):
                        head += chunk
                    self.heads.append(head)
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass


@pytest.fixture
def endpoint():
    server = RecordingEndpoint()
    yield server
    server.sock.close()


KEY_ID = "AKIAFAKEUSERSOWNKEY1"


@pytest.fixture
def hostile(small_zoo, endpoint, tmp_path, monkeypatch):
    """A clone of small_zoo (default remote: the local folder 'local'; no DVC cache) whose user also has an
    S3 remote 'backup' (AWS itself, credentials in .dvc/config.local) and AWS credentials in the
    environment. Upstream has two hostile branches: 'evil' adds an S3 remote at ``endpoint`` and makes it
    the default; 'takeover' redefines 'backup' with ``endpoint`` and makes it the default."""
    config = small_zoo / ".dvc" / "config"
    mine = config.read_text()
    assert "    remote = local\n" in mine
    at_endpoint = f"    url = s3://zoo/x\n    endpointurl = {endpoint.url}\n"
    for branch, name in (("evil", "evil"), ("takeover", "backup")):
        git("checkout", "-qb", branch, "main", cwd=small_zoo)
        config.write_text(mine.replace("    remote = local\n", f"    remote = {name}\n") + f"['remote \"{name}\"']\n"
                          + at_endpoint)
        git("commit", "-qam", f"{branch}: point the default remote at another endpoint", cwd=small_zoo)
        git("checkout", "-q", "main", cwd=small_zoo)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "users-own-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(small_zoo), str(clone)], check=True)
    for branch in ("evil", "takeover"):
        git("branch", "-q", branch, f"origin/{branch}", cwd=clone)
    shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
    (clone / ".dvc" / "config.local").write_text(
        "['remote \"backup\"']\n    url = s3://zoo/x\n    access_key_id = AKIAFAKEBACKUPKEY001\n"
        "    secret_access_key = backup-secret\n")
    return clone


def test_revision_endpoint_refused_for_a_local_clone(hostile, endpoint):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import RemoteConfigError

    with pytest.raises(RemoteConfigError) as e:
        Zoo(hostile, rev="evil").fetch("alpha@10")
    assert str(e.value) == (
        f"zoo/checkpoints/alpha/step-00000010.safetensors at {git('rev-parse', 'evil', cwd=hostile)[:12]} of "
        f"{hostile}: its default remote 'evil' (s3://zoo/x, endpoint {endpoint.url}) comes from that revision, not "
        "from your configuration, and gets none of your credentials; pass remote=NAME (CLI: --remote NAME) of a "
        "remote you configured, or add it to your clone with `zoo remote add`")
    for remote in (None, "backup"):  # your 'backup' (and its config.local key) redirected: refused even when named
        with pytest.raises(RemoteConfigError, match=rf"of {hostile}: remote 'backup' there points at s3://zoo/x, "
                                                    rf"endpoint {endpoint.url}, but your 'backup' points at s3://zoo/x "
                                                    r"and your credentials for it go only there; read that revision "
                                                    r"with remote=NAME"):
            Zoo(hostile, rev="takeover", remote=remote).pull(["beta@5"])
    assert endpoint.connections == 0
    # the clone's own remote still serves those revisions, named or by default
    at_evil = Zoo(hostile, rev="evil")
    path = at_evil.fetch("alpha@10", remote="local")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == at_evil.get("alpha@10").sha256
    assert Zoo(hostile, rev="takeover", remote="local").fetch("beta@5").is_file()
    assert Zoo(hostile, rev="main").fetch("alpha@20").is_file()
    assert endpoint.connections == 0


def test_revision_endpoint_refused_for_a_url_unless_named(hostile, small_zoo, endpoint):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import RemoteConfigError, StorageError

    url = small_zoo.as_uri()
    zoo = Zoo(url, rev="evil")
    with pytest.raises(RemoteConfigError, match=r"of file://.*: its default remote 'evil' \(s3://zoo/x, endpoint "
                                                r"http://127\.0\.0\.1:\d+\) comes from that revision.*pass "
                                                r"remote='evil' \(CLI: --remote evil\) if you trust it"):
        zoo.pull(["alpha@10"])
    assert endpoint.connections == 0
    # live control: named explicitly, the revision's endpoint is used, and it receives the user's key id
    with pytest.raises(StorageError):
        zoo.fetch("alpha@10", remote="evil")
    assert any(KEY_ID.encode() in head for head in endpoint.heads)


def test_a_revision_remote_matching_one_you_configured_is_used(hostile, endpoint):
    """The rule is about where the credentials go: the same url and endpoint under another name is yours."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import StorageError

    with (hostile / ".dvc" / "config").open("a") as f:
        f.write(f"['remote \"mine\"']\n    url = s3://zoo/x/\n    endpointurl = {endpoint.url}/\n")
    with pytest.raises(StorageError):
        Zoo(hostile, rev="evil").fetch("alpha@10")
    assert endpoint.connections > 0
