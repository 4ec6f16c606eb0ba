"""`zoo serve`: the real server (the `zoo` entry point, uvicorn) on 127.0.0.1 over a clone of the reference zoo:
the JSON API, verified downloads with Range, revisions, hostile paths and methods, and a 1 GiB download at
flat server memory."""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import PROJECT, ZOO_BIN, git, register_arch
from test_site import _css, _open

TABLE = "zoo/checkpoints.csv"
MODEL = "mnist-shufflenet"  # a reference model with several checkpoints, served as a whole and step by step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`zoo serve` in a child process, stopped at the end."""

    def __init__(self, root: Path, *args: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen([str(ZOO_BIN), "-C", str(root), "serve", "--port", str(self.port), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"zoo serve exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if self.get("/api/versions")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("zoo serve did not answer within 90 s")

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request(method, path, headers=headers or {})
        return conn.getresponse()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        r = self.request("GET", path, headers)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def json(self, path: str, status: int = 200):
        code, headers, body = self.get(path)
        assert code == status, (path, code, body[:300])
        return json.loads(body)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def _rows(root: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((root / TABLE).read_text())))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A clone of the reference zoo (nothing pulled: bytes come from its in-repo remote on demand), tagged
    v1, then one more commit that edits a description; served at the working tree."""
    from conftest import isolate

    base = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "clone"
        subprocess.run(["git", "clone", "-q", str(PROJECT), str(root)], check=True)
        git("tag", "v1", cwd=root)
        text = (root / TABLE).read_text()
        rows = _rows(root)
        old = rows[0]["description"]
        (root / TABLE).write_text(text.replace(old, old + " Edited after v1.", 1))
        git("commit", "-qam", "edit a description", cwd=root)
        server = Server(root)
        try:
            yield root, server, rows
        finally:
            server.stop()


def test_models_search_facets_sort_and_pages(served):
    root, s, rows = served
    models = sorted({r["model"] for r in rows})
    listed = s.json("/api/models")
    assert [m["id"] for m in listed] == models
    by_id = {m["id"]: m for m in listed}
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        assert by_id[model]["checkpoints"] == len(mine)
        assert by_id[model]["size_bytes"] == sum(int(r["size_bytes"]) for r in mine)
    def text(model: str) -> str:  # what ?search= matches: name, latest description, arch, task, dataset, tags
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: int(r["step"]))
        last = mine[-1]
        return " ".join([model, last["description"], last["arch"], last["task"], last["dataset"],
                         *[t for r in mine for t in r["tags"].split(";")]]).lower()

    for term in ("MNIST", "fcos", "parity", "no-such-thing"):
        found = [m["id"] for m in s.json(f"/api/models?search={term}")]
        assert found == [m for m in models if term.lower() in text(m)], term
    tabular = [m["id"] for m in s.json("/api/models?task=tabular-classification")]
    assert tabular and tabular == [m for m in models if by_id[m]["task"] == "tabular-classification"]
    both = s.json("/api/models?task=tabular-classification&task=image-classification")
    assert [m["id"] for m in both] == [m for m in models
                                       if by_id[m]["task"] in ("tabular-classification", "image-classification")]
    ranked = s.json("/api/models?sort=accuracy&direction=desc")
    values = [m["metrics"].get("accuracy") for m in ranked]
    scored = [v for v in values if v is not None]
    assert values == sorted(scored, reverse=True) + [None] * (len(values) - len(scored))  # no accuracy: last
    assert len(ranked) == len(models) and len(scored) < len(values)  # the detector has no accuracy
    # pages: a Link header to the next, until the last
    seen, path = [], "/api/models?sort=id&limit=1"
    while path:
        code, headers, body = s.get(path)
        assert code == 200 and headers["x-total-count"] == str(len(models))
        seen += [m["id"] for m in json.loads(body)]
        link = headers.get("link")
        path = link[1:link.index(">")] if link else ""
        assert not link or link.endswith('rel="next"')
    assert seen == models
    for bad in ("limit=0", "limit=1001", "limit=-1", "offset=x", "sort=nope", "direction=up"):
        assert "error" in s.json(f"/api/models?{bad}", status=400)


def test_model_checkpoint_leaderboard_and_versions(served):
    root, s, rows = served
    mine = [r for r in rows if r["model"] == MODEL]
    model = s.json(f"/api/models/{MODEL}")
    assert [c["step"] for c in model["checkpoints"]] == sorted(int(r["step"]) for r in mine)
    assert model["card"]["metadata"]["license"] and MODEL in model["card"]["markdown"]
    assert set(model["lineage"]) == {"ancestors", "descendants"}
    step = mine[-1]["step"]
    ckpt = s.json(f"/api/models/{MODEL}/checkpoints/{step}")
    assert ckpt["sha256"] == mine[-1]["sha256"]
    assert ckpt["files"] == [{"name": Path(mine[-1]["path"]).name, "size_bytes": int(mine[-1]["size_bytes"]),
                              "sha256": mine[-1]["sha256"],
                              "url": f"/files/by-sha256/{mine[-1]['sha256']}/{Path(mine[-1]['path']).name}"}]
    assert "7" not in {r["step"] for r in mine}  # so /checkpoints/7 below is a step the model lacks
    for path in ("/api/models/nope", f"/api/models/{MODEL}/checkpoints/7", f"/api/models/{MODEL}/checkpoints/0{step}",
                 f"/api/models/{MODEL.upper()}"):
        assert "error" in s.json(path, status=404)
    board = s.json("/api/leaderboard?task=image-classification")["image-classification"]
    listed = {m["id"]: m for m in s.json("/api/models?task=image-classification")}
    assert [e["model"] for e in board["models"]] == sorted(listed, key=lambda m: -listed[m]["best_value"])
    assert [e["checkpoint"] for e in board["models"]] == [listed[e["model"]]["best"] for e in board["models"]]
    assert "error" in s.json("/api/leaderboard?task=nope", status=404)
    names = {v["name"] for v in s.json("/api/versions")}
    assert {git("rev-parse", "--abbrev-ref", "HEAD", cwd=root).strip(), "v1"} <= names


def test_revisions_and_hostile_revs(served, tmp_path):
    root, s, rows = served
    first = rows[0]
    now = s.json(f"/api/models/{first['model']}")
    then = s.json(f"/api/models/{first['model']}?rev=v1")
    assert then["commit"] == git("rev-parse", "v1", cwd=root).strip()
    descriptions = {c["description"] for c in now["checkpoints"]} - {c["description"] for c in then["checkpoints"]}
    assert descriptions == {first["description"] + " Edited after v1."}
    marker = tmp_path / "PWNED"
    for rev in (f"--upload-pack=touch {marker}", "-u", f"--output={marker}", "HEAD:zoo", "a..b", "x\ny"):
        assert "error" in s.json(f"/api/models?rev={_q(rev)}", status=400), rev
    assert "error" in s.json("/api/models?rev=no-such-branch", status=404)
    assert not marker.exists()


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_download_verified_with_etag_and_range_resume(served):
    root, s, rows = served
    row = next(r for r in rows if r["model"] == MODEL)
    path = f"/files/{MODEL}/{row['step']}"
    code, headers, body = s.get(path)
    assert code == 200, body[:200]
    assert hashlib.sha256(body).hexdigest() == row["sha256"] and len(body) == int(row["size_bytes"])
    assert headers["etag"] == f'"{row["sha256"]}"' and headers["content-length"] == row["size_bytes"]
    assert headers["accept-ranges"] == "bytes"
    assert not (root / row["path"]).exists()  # served from the DVC cache: the working tree is not written
    # a broken download resumed as `curl -C -` does
    cut = len(body) // 3
    code, headers, tail = s.get(path + "/" + Path(row["path"]).name, {"Range": f"bytes={cut}-"})
    assert code == 206 and headers["content-range"] == f"bytes {cut}-{len(body) - 1}/{len(body)}"
    assert hashlib.sha256(body[:cut] + tail).hexdigest() == row["sha256"]
    code, _, _ = s.get(path, {"Range": f"bytes={len(body) + 10}-"})
    assert code == 416


def test_hostile_paths_methods_and_headers(served):
    root, s, rows = served
    row = next(r for r in rows if r["model"] == "wine-linear")
    for path in ("/files/../zoo/checkpoints.csv", "/files/%2e%2e/%2e%2e/etc/passwd",
                 f"/files/wine-linear/{row['step']}/..%2F..%2Fcheckpoints.csv",
                 f"/files/wine-linear/{row['step']}/%2e%2e", f"/files/wine-linear/{row['step']}/other.safetensors",
                 "/files/wine-linear/x", "/files/WINE-LINEAR/5", "/files/wine-linear/1e1", "/api/../../etc/passwd",
                 "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd"):
        code, headers, body = s.get(path)
        assert code in (400, 404), (path, code)
        assert b"root:" not in body and b"model,step" not in body, path
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/api/models", "/files/wine-linear/5", "/nope"):
            r = s.request(method, path)
            assert r.status == 405 and r.getheader("Allow") == "GET, HEAD", (method, path, r.status)
            r.read()
    code, headers, _ = s.get("/api/models")
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    # a symlink put in place of a checkpoint is never followed out of the zoo
    target = root / row["path"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to("/etc/passwd")
    try:
        code, _, body = s.get(f"/files/wine-linear/{row['step']}")
        assert b"root:" not in body and (code != 200 or hashlib.sha256(body).hexdigest() == row["sha256"])
    finally:
        target.unlink()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_one_gib_download_at_flat_memory(tmp_path):
    import numpy as np

    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    root = tmp_path / "zoo"
    init(root, remote_url=str(tmp_path / "remote"), registries_from=PROJECT)
    floats = (1 << 30) // 4
    register_arch(root, "gib", in_features=floats, out_features=1, bias=False)
    git("add", "conf", cwd=root)
    git("commit", "-qm", "zoo", cwd=root)
    src = tmp_path / "big.safetensors"
    header = json.dumps({"weight": {"dtype": "F32", "shape": [1, floats], "data_offsets": [0, floats * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(src, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.write(np.arange(1 << 20, dtype=np.float32).tobytes())  # not all zeros
        f.truncate(8 + len(header) + floats * 4)
    with Zoo(root) as z:
        c = z.add(src, model="big", step=1, arch="gib", task="tabular-classification", dataset="wine",
                  license="MIT", move=True).checkpoint
    s = Server(root)
    try:
        s.get("/api/models")
        before = _rss_kib(s.proc.pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_kib(s.proc.pid))
                time.sleep(0.05)

        watcher = threading.Thread(target=sample)
        watcher.start()
        r = s.request("GET", "/files/big/1")
        h = hashlib.sha256()
        n = 0
        while chunk := r.read(4 << 20):
            h.update(chunk)
            n += len(chunk)
        done.set()
        watcher.join()
        assert r.status == 200 and n == c.size_bytes and h.hexdigest() == c.sha256
        assert peak[0] - before < 64 * 1024, f"server RSS grew {(peak[0] - before) / 1024:.0f} MiB for a 1 GiB download"
    finally:
        s.stop()


def test_serve_refuses_a_bad_zoo_and_warns_off_loopback(served, tmp_path):
    root, _, _ = served
    r = subprocess.run([str(ZOO_BIN), "-C", str(tmp_path), "serve", "--port", "0"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r
    r = subprocess.run([str(ZOO_BIN), "-C", str(root), "serve", "--rev=--upload-pack=x"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr and "upload-pack" in r.stderr, r
    assert urlsplit("http://127.0.0.1").hostname == "127.0.0.1"
    from checkpoint_zoo.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_the_real_server_serves_the_page_with_working_downloads(served, browser):
    root, s, rows = served
    base = f"http://127.0.0.1:{s.port}/"
    code, headers, body = s.get("/")
    assert code == 200 and headers["content-type"].startswith("text/html") and b"app.js" in body
    code, headers, body = s.get("/data.js?rev=v1")
    assert code == 200 and body.startswith(b"window.ZOO_DATA") and headers["content-type"].startswith("text/javascript")
    _open(browser, base + f"#/model/{MODEL}", "#checkpoints")
    links = {tr.get_attribute("data-ref"): tr.find_element("css selector", "a.download").get_attribute("href")
             for tr in _css(browser, "#checkpoints tbody tr")}
    mine = {f"{r['model']}@{r['step']}": r for r in rows if r["model"] == MODEL}
    assert set(links) == set(mine)
    ref = sorted(links)[0]
    code, _, data = s.get(urlsplit(links[ref]).path)
    assert code == 200 and hashlib.sha256(data).hexdigest() == mine[ref]["sha256"]
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused
