"""`zoo serve` speaks the Hugging Face Hub's read protocol: the real clients (the project's pinned
huggingface_hub, transformers and timm, each in a child process with HF_ENDPOINT pointed at the server) against
a real `zoo serve` child over a clone of the reference zoo; bytes come from its in-repo remote on demand."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, ZOO_BIN, git, run_zoo
from s3_server import MotoServer
from test_s3 import A10, A20, Origin, md5_key, template  # noqa: F401 - template is a fixture used below
from test_serve import Server

TABLE = "zoo/checkpoints.csv"
HEX40 = re.compile(r"[0-9a-f]{40}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A clone of the reference zoo, tagged v1 and branched as exp/foo, its first mnist-shufflenet step released
    as v1.2.0 and staged in prod, served once for the module."""
    from conftest import isolate

    base = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "clone"
        subprocess.run(["git", "clone", "-q", str(PROJECT), str(root)], check=True)
        git("tag", "v1", cwd=root)
        git("branch", "exp/foo", cwd=root)
        rows = list(csv.DictReader(io.StringIO((root / TABLE).read_text())))
        first = min((r for r in rows if r["model"] == "mnist-shufflenet"), key=lambda r: int(r["step"]))
        for args in (("release", f"mnist-shufflenet@{first['step']}", "v1.2.0"),
                     ("stage", "mnist-shufflenet@v1.2.0", "prod")):
            r = run_zoo(*args, cwd=root)
            assert r.code == 0, r.err
        server = Server(root)
        try:
            yield root, server, rows, base
        finally:
            server.stop()


def client(hub, code: str, cache: str = "hf", server: Server | None = None, token: str | None = None) -> dict:
    """Run ``code`` (which prints one JSON line last) with the Hub clients pointed at the server."""
    root, served, _, base = hub
    server = server or served
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.port}", HF_HOME=str(base / cache),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", ZOO_ROOT=str(root))
    if token is not None:
        env["HF_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _one_file(rows, model: str) -> list[dict]:
    return sorted((r for r in rows if r["model"] == model), key=lambda r: int(r["step"]))


def test_hf_hub_download_exact_bytes_steps_and_revisions(hub):
    root, server, rows, _ = hub
    mine = _one_file(rows, "mnist-shufflenet")
    first, last = mine[0], mine[-1]
    got = client(hub, f"""
        import json
        from huggingface_hub import hf_hub_download
        out = {{}}
        for rev in ("step-{first['step']}", "step-{last['step']}", "{first['step']}", "v1@{first['step']}",
                    "v1@best", "exp/foo", "main", "latest", "v1.2.0", "prod"):
            out[rev] = hf_hub_download("zoo/mnist-shufflenet", "model.safetensors", revision=rev)
        print(json.dumps(out))
    """)
    by_step = {r["step"]: r["sha256"] for r in mine}
    a, b = got[f"step-{first['step']}"], got[f"step-{last['step']}"]
    assert a != b  # two steps through the same client cache: each its own snapshot folder and bytes
    assert _sha(a) == first["sha256"] and _sha(b) == last["sha256"]
    for rev in (first["step"], f"v1@{first['step']}", "v1.2.0", "prod"):  # a step, a git ref with one, a release, a stage
        assert _sha(got[rev]) == first["sha256"], rev
    best = server.json("/api/models/mnist-shufflenet")["best"].split("@")[1]
    for rev in ("v1@best", "exp/foo", "main"):
        assert _sha(got[rev]) == by_step[best], rev
    assert _sha(got["latest"]) == last["sha256"]
    commit = Path(a).parent.name
    assert HEX40.fullmatch(commit)
    # the commit id a client saw is a revision, giving the same bytes
    status, headers, body = server.get(f"/zoo/mnist-shufflenet/resolve/{commit}/model.safetensors")
    assert status == 200 and hashlib.sha256(body).hexdigest() == first["sha256"]
    assert headers["x-repo-commit"] == commit and headers["etag"] == f'"{first["sha256"]}"'


def test_hf_cli_download(hub, tmp_path):
    root, server, rows, base = hub
    row = _one_file(rows, "wine-linear")[-1]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.port}", HF_HOME=str(base / "hf-cli"), HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run([str(Path(sys.executable).with_name("hf")), "download", "zoo/wine-linear",
                           "model.safetensors", "--revision", f"step-{row['step']}", "--local-dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _sha(tmp_path / "model.safetensors") == row["sha256"]


def test_resolve_headers_ranges_and_error_codes(hub):
    root, server, rows, _ = hub
    row = _one_file(rows, "wine-linear")[0]
    url = f"/zoo/wine-linear/resolve/step-{row['step']}/model.safetensors"
    r = server.request("HEAD", url)
    r.read()
    headers = {k.lower(): v for k, v in r.getheaders()}
    assert r.status == 200 and headers["etag"] == f'"{row["sha256"]}"'
    assert headers["content-length"] == row["size_bytes"] and HEX40.fullmatch(headers["x-repo-commit"])
    assert not [k for k in headers if "xet" in k] and "content-encoding" not in headers
    assert "xet" not in headers.get("link", "")
    status, ranged, body = server.get(url, {"Range": "bytes=100-", "Accept-Encoding": "gzip"})
    whole = server.get(url)[2]
    assert status == 206 and body == whole[100:] and ranged["content-range"].startswith("bytes 100-")
    readme = f"/zoo/wine-linear/resolve/step-{row['step']}/README.md"
    status, ranged, body = server.get(readme, {"Range": "bytes=3-"})
    assert status == 206 and body == server.get(readme)[2][3:]
    for path, code in [("/zoo/no-such-model/resolve/main/model.safetensors", "RepoNotFound"),
                       ("/other/wine-linear/resolve/main/model.safetensors", "RepoNotFound"),
                       ("/zoo/wine-linear/resolve/step-999999/model.safetensors", "RevisionNotFound"),
                       ("/zoo/wine-linear/resolve/no-such-branch/model.safetensors", "RevisionNotFound"),
                       ("/zoo/wine-linear/resolve/v1%40999/model.safetensors", "RevisionNotFound"),
                       ("/zoo/wine-linear/resolve/main/pytorch_model.bin", "EntryNotFound"),
                       ("/api/models/zoo/no-such-model", "RepoNotFound"),
                       ("/api/models/zoo/wine-linear/revision/nope", "RevisionNotFound"),
                       ("/api/models/zoo/wine-linear/xet-read-token/main", "EntryNotFound"),
                       ("/api/models/other/wine-linear", "RepoNotFound"),
                       ("/api/models/other/wine-linear/revision/main", "RepoNotFound"),
                       ("/api/spaces", "EntryNotFound"),
                       ("/api/models/zoo/wine-linear/resolve/main/nope", "EntryNotFound")]:
        for method in ("HEAD", "GET"):
            r = server.request(method, path)
            r.read()
            assert 400 <= r.status < 500 and r.getheader("X-Error-Code") == code, (method, path, r.status)
    r = server.request("HEAD", "/zoo/wine-linear/resolve/main/pytorch_model.bin")
    r.read()
    assert HEX40.fullmatch(r.getheader("X-Repo-Commit") or "")  # lets the client cache the negative answer


def test_api_model_info_files_refs_list_snapshot_and_verify(hub):
    root, server, rows, _ = hub
    got = client(hub, """
        import json
        from huggingface_hub import HfApi, snapshot_download
        api = HfApi()
        info = api.model_info("zoo/mnist-mobilenetv3", files_metadata=True)
        refs = api.list_repo_refs("zoo/mnist-mobilenetv3")
        path = snapshot_download("zoo/mnist-mobilenetv3", revision="step-25")
        snapshot_download("zoo/mnist-mobilenetv3")  # main, which verification reads back from the cache
        verify = getattr(api, "verify_repo_checksums", None)  # in the pinned generation, not in older ones
        verified = verify("zoo/mnist-mobilenetv3", revision=info.sha) if verify else None
        print(json.dumps({
            "sha": info.sha, "pipeline_tag": info.pipeline_tag, "library_name": info.library_name,
            "parameters": [info.safetensors.parameters, info.safetensors.total] if info.safetensors else None,
            "siblings": {s.rfilename: [s.size, s.lfs.sha256 if s.lfs else None] for s in info.siblings},
            "card": info.card_data.to_dict() if info.card_data else {},
            "files": api.list_repo_files("zoo/mnist-mobilenetv3"),
            "branches": {b.name: b.target_commit for b in refs.branches},
            "tags": {t.name: t.target_commit for t in refs.tags},
            "models": [m.id for m in api.list_models(search="mnist")],
            "two": [m.id for m in api.list_models(limit=2)],
            "snapshot": {p.name: p.read_bytes().hex() if p.suffix == ".safetensors" else None
                         for p in __import__("pathlib").Path(path).iterdir() if p.is_file()},
            "eval_results": {p.name: p.read_text() for p in (__import__("pathlib").Path(path) / ".eval_results").iterdir()},
            "snapshot_dir": path,
            "verified": None if verified is None else [verified.mismatches, verified.checked_count],
        }))
    """)
    mine = {r["step"]: r for r in _one_file(rows, "mnist-mobilenetv3")}
    best = server.json("/api/models/mnist-mobilenetv3")["best"].split("@")[1]
    assert HEX40.fullmatch(got["sha"]) and got["library_name"] == "timm"
    assert got["pipeline_tag"] == "image-classification"
    metrics = server.json(f"/api/models/mnist-mobilenetv3/checkpoints/{best}")["metrics"]
    results = sorted(f".eval_results/{m}.yaml" for m in metrics)
    assert results and sorted(got["files"]) == sorted(["README.md", "config.json", "model.safetensors", *results]) \
        == sorted(got["siblings"])
    assert got["siblings"]["model.safetensors"] == [int(mine[best]["size_bytes"]), mine[best]["sha256"]]
    # the Hub's per-dtype parameter count: what the table knows (one dtype), nothing made up for mixed ones
    n_params, dtype = int(mine[best]["num_params"]), mine[best]["dtype"]
    assert got["parameters"] == (None if ";" in dtype else [{dtype: n_params}, n_params])
    wine = next(r for r in rows if r["model"] == "wine-linear" and ";" not in r["dtype"])
    info = server.json(f"/api/models/zoo/wine-linear/revision/step-{wine['step']}")
    assert info["safetensors"] == {"parameters": {wine["dtype"]: int(wine["num_params"])}, "total": int(wine["num_params"])}
    assert got["card"]["library_name"] == "timm" and got["card"]["datasets"] == [mine[best]["dataset"]]
    assert got["branches"]["main"] == got["sha"] and "exp/foo" in got["branches"] and "v1" in got["tags"]
    expected = sorted({r["model"] for r in rows if "mnist" in r["model"]})
    assert got["models"] == [f"zoo/{m}" for m in expected]
    assert got["two"] == [f"zoo/{m}" for m in sorted({r["model"] for r in rows})][:2]
    # pages by Link, followed to the end
    hub_client = {"User-Agent": "unknown/None; hf_hub/2.4.0; python/3.11"}
    status, headers, body = server.get("/api/models?limit=3", hub_client)
    seen = [m["id"] for m in json.loads(body)]
    while "link" in headers:
        url = re.fullmatch(r'<http://127\.0\.0\.1:\d+(/[^>]*)>; rel="next"', headers["link"]).group(1)
        status, headers, body = server.get(url, hub_client)
        seen += [m["id"] for m in json.loads(body)]
    assert status == 200 and seen == [f"zoo/{m}" for m in sorted({r["model"] for r in rows})]
    assert sorted(got["snapshot"]) == ["README.md", "config.json", "model.safetensors"]
    assert hashlib.sha256(bytes.fromhex(got["snapshot"]["model.safetensors"])).hexdigest() == mine["25"]["sha256"]
    # .eval_results/: the value the zoo reproduced for exactly step 25's bytes, one file per metric
    at25 = server.json("/api/models/mnist-mobilenetv3/checkpoints/25")
    assert sorted(got["eval_results"]) == sorted(f"{m}.yaml" for m in at25["metrics"])
    for name, value in at25["metrics"].items():
        (result,) = yaml.safe_load(got["eval_results"][f"{name}.yaml"])
        assert result["value"] == value and result["dataset_id"] == at25["dataset"]
        assert result["task_id"] == at25["task"] and at25["sha256"] in result["notes"]
    assert Path(got["snapshot_dir"]).name != got["sha"]  # step 25 is not the best: another commit id
    if got["verified"] is not None:
        assert got["verified"][0] == [] and got["verified"][1] >= 1
    # the tree's lfs.oid is the ETag a HEAD answers
    tree = server.json("/api/models/zoo/mnist-mobilenetv3/tree/main?recursive=true&expand=false")
    assert {e["path"] for e in tree if e["type"] == "directory"} == {".eval_results"}
    for entry in (e for e in tree if e["type"] == "file"):
        r = server.request("HEAD", f"/zoo/mnist-mobilenetv3/resolve/{got['sha']}/{entry['path']}")
        r.read()
        assert r.getheader("ETag") == f'"{entry["lfs"]["oid"]}"' and int(r.getheader("Content-Length")) == entry["size"]
    # a model fine-tuned from another names that repository as its base model, in the card it serves
    info = server.json("/api/models/zoo/mnist-parity-mobilenetv3")
    parent = next(r["parent"] for r in rows if r["model"] == "mnist-parity-mobilenetv3" and r["parent"])
    assert info["cardData"]["base_model"] == f"zoo/{parent.split('@')[0]}"
    readme = server.get(f"/zoo/mnist-parity-mobilenetv3/resolve/{info['sha']}/README.md")[2].decode()
    assert readme.startswith("---\n") and f"base_model: zoo/{parent.split('@')[0]}" in readme and parent in readme
    # the zoo's own list keeps its plain ids
    assert "mnist-mobilenetv3" in [m["id"] for m in server.json("/api/models")]


def test_served_card_carries_the_checkpoints_own_reproduced_results(hub):
    """README.md's `model-index` is of the checkpoint served (not the model's best), as huggingface_hub parses it."""
    root, server, rows, _ = hub
    first = _one_file(rows, "mnist-shufflenet")[0]
    best = server.json("/api/models/mnist-shufflenet")["best"].split("@")[1]
    assert best != first["step"]
    got = client(hub, f"""
        import json
        from huggingface_hub import HfApi, ModelCard, hf_hub_download
        out = {{}}
        for rev in ("step-{first['step']}", "main"):
            card = ModelCard.load(hf_hub_download("zoo/mnist-shufflenet", "README.md", revision=rev))
            info = HfApi().model_info("zoo/mnist-shufflenet", revision=rev)
            out[rev] = [[r.metric_type, r.metric_value, r.dataset_type, r.dataset_split, r.dataset_revision]
                        for r in card.data.eval_results], [r.metric_value for r in info.card_data.eval_results]
        print(json.dumps(out))
    """, cache="hf-cards")
    for rev, step in ((f"step-{first['step']}", first["step"]), ("main", best)):
        entry = server.json(f"/api/models/mnist-shufflenet/checkpoints/{step}")
        from_card, from_info = got[rev]
        assert [r[0] for r in from_card] == sorted(entry["metrics"]) and len(from_card) >= 2
        assert [r[1] for r in from_card] == [entry["metrics"][k] for k in sorted(entry["metrics"])] == from_info
        assert {(r[2], r[3], r[4]) for r in from_card} == {
            (entry["dataset"], entry["evaluation"]["split"], entry["evaluation"]["data_hash"])}


def test_transformers_from_pretrained_loads_the_reference_bert(hub):
    got = client(hub, """
        import json, os, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from checkpoint_zoo import Zoo
        model = AutoModelForSequenceClassification.from_pretrained("zoo/bbc-bert-tiny").float().eval()
        tok = AutoTokenizer.from_pretrained("zoo/bbc-bert-tiny")
        ours = Zoo(os.environ["ZOO_ROOT"]).load_model("bbc-bert-tiny@best").eval()
        batch = tok(["shares fell sharply as the bank cut rates", "the team won the cup final"],
                    return_tensors="pt", padding=True)
        with torch.no_grad():
            a, b = model(**batch).logits.float(), ours(**batch).logits.float()
        print(json.dumps({"diff": (a - b).abs().max().item(), "shape": list(a.shape)}))
    """, cache="hf-transformers")
    assert got["shape"][0] == 2 and got["diff"] < 1e-3


def test_timm_hf_hub_name_gives_the_zoo_logits(hub):
    got = client(hub, """
        import json, os, timm, torch
        from checkpoint_zoo import Zoo
        model = timm.create_model("hf-hub:zoo/mnist-mobilenetv3", pretrained=True).eval()
        ours = Zoo(os.environ["ZOO_ROOT"]).load_model("mnist-mobilenetv3@best")
        x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            a, b = model(x), ours(x)
        print(json.dumps({"diff": (a - b).abs().max().item(), "scale": b.abs().max().item()}))
    """, cache="hf-timm")
    assert got["scale"] > 0 and got["diff"] < 1e-5


class AuthServer(Server):
    """`zoo serve --tokens FILE`, polled for readiness with a token that reads every model."""

    def __init__(self, root: Path, token: str, *args: str) -> None:
        self.token = token
        super().__init__(root, *args)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None):
        return super().request(method, path, {"Authorization": f"Bearer {self.token}", **(headers or {})})


def test_tokens_guard_every_route_and_read_only_their_models(hub, tmp_path):
    root, _, rows, _ = hub
    file = tmp_path / "secrets" / "tokens.json"
    made = {}
    for name, pattern in (("all", "*"), ("mnist", "mnist-*")):
        r = run_zoo("token", "create", "--models", pattern, "--name", name, "--file", str(file), cwd=root)
        assert r.code == 0, r.err
        made[name] = r.out.strip()
        assert made[name] not in file.read_text() and hashlib.sha256(made[name].encode()).hexdigest() in file.read_text()
    assert (file.stat().st_mode & 0o077) == 0
    server = AuthServer(root, made["all"], "--tokens", str(file))
    try:
        for path in ("/api/models", "/", "/api/models/zoo/mnist-shufflenet", "/files/wine-linear/5",
                     "/zoo/mnist-shufflenet/resolve/main/model.safetensors"):
            for auth in ({"Authorization": ""}, {"Authorization": "Bearer zoo_not-a-token"},
                         {"Authorization": f"Basic {made['all']}"}):
                status, headers, body = server.get(path, auth)
                assert status == 401 and headers["x-error-code"] == "RepoNotFound", (path, auth, status)
                assert b"mnist" not in body and b"wine" not in body
        mnist = {"Authorization": f"Bearer {made['mnist']}"}
        # a model the token does not read answers exactly as one that does not exist
        for hidden, missing in [("/api/models/zoo/wine-linear", "/api/models/zoo/no-such-model"),
                                ("/zoo/wine-linear/resolve/main/model.safetensors",
                                 "/zoo/no-such-model/resolve/main/model.safetensors"),
                                ("/api/models/wine-linear", "/api/models/no-such-model"),
                                ("/files/wine-linear/5", "/files/no-such-model/5")]:
            a, b = server.get(hidden, mnist), server.get(missing, mnist)
            assert a[0] == b[0] == 404 and a[1].get("x-error-code") == b[1].get("x-error-code")
            assert a[2].replace(b"wine-linear", b"X") == b[2].replace(b"no-such-model", b"X"), (a, b)
        listed = server.get("/api/models", mnist)  # the zoo's own list: only the models the token reads
        assert listed[0] == 200 and [m["id"] for m in json.loads(listed[2])] == sorted(
            {r["model"] for r in rows if r["model"].startswith("mnist-")})
        assert server.get("/api/models", {"Authorization": f"Bearer {made['all']}"})[0] == 200
        row = _one_file(rows, "mnist-shufflenet")[0]
        got = client(hub, f"""
            import json
            from huggingface_hub import HfApi, hf_hub_download
            from huggingface_hub.errors import RepositoryNotFoundError
            path = hf_hub_download("zoo/mnist-shufflenet", "model.safetensors", revision="step-{row['step']}")
            try:
                hf_hub_download("zoo/wine-linear", "model.safetensors")
                hidden = "served"
            except RepositoryNotFoundError:
                hidden = "not found"
            print(json.dumps({{"path": path, "hidden": hidden, "models": [m.id for m in HfApi().list_models()]}}))
        """, cache="hf-token", server=server, token=made["mnist"])
        assert _sha(got["path"]) == row["sha256"] and got["hidden"] == "not found"
        assert got["models"] == [f"zoo/{m}" for m in sorted({r["model"] for r in rows}) if m.startswith("mnist-")]
    finally:
        server.stop()


def test_a_token_for_some_models_sees_only_them_in_every_list(hub, tmp_path):
    """The zoo's own all-model routes (list, search, leaderboard, versions, the page's data, content-addressed
    downloads, lineage) show a token reading only mnist-parity-mobilenetv3 that model alone: no other model's
    name, count, size or bytes; its lineage stops at its parent (mnist-mobilenetv3@300), which it does not read."""
    root, _, rows, _ = hub
    file = tmp_path / "tokens.json"
    made = {}
    for name, pattern in (("all", "*"), ("parity", "mnist-parity-*"), ("parent", "mnist-mobilenetv3")):
        r = run_zoo("token", "create", "--models", pattern, "--name", name, "--file", str(file), cwd=root)
        assert r.code == 0, r.err
        made[name] = r.out.strip()
    mine = "mnist-parity-mobilenetv3"
    # what its own rows say in free text (its description names the model it was fine-tuned from) is its own
    own_text = " ".join(r["description"] + r["source"] for r in rows if r["model"] == mine)
    others = sorted(m for m in {r["model"] for r in rows} - {mine} if m not in own_text)
    assert len(others) >= 5
    hidden_row = next(r for r in rows if r["model"] == "wine-linear")
    server = AuthServer(root, made["all"], "--tokens", str(file))
    try:
        everything = {path: server.get(path)[2] for path in ("/api/models", "/api/leaderboard", "/api/versions",
                                                              "/data.js")}
        assert all(any(o.encode() in body for o in others) for body in everything.values())  # the '*' token sees all
        parity = {"Authorization": f"Bearer {made['parity']}"}
        seen = {}
        for path in ("/api/models", "/api/models?search=mnist", "/api/models?sort=size_bytes&direction=desc",
                     "/api/leaderboard", "/api/leaderboard?task=image-classification", "/api/versions", "/data.js",
                     f"/api/models/{mine}", f"/api/models/{mine}/history",
                     f"/api/models/{mine}/checkpoints/{_one_file(rows, mine)[0]['step']}"):
            status, headers, body = server.get(path, parity)
            assert status == 200, (path, status, body[:300])
            leaked = [o for o in others if o.encode() in body]
            assert not leaked, (path, leaked)
            seen[path] = (headers, body)
        listed = json.loads(seen["/api/models"][1])
        assert [m["id"] for m in listed] == [mine] and seen["/api/models"][0]["x-total-count"] == "1"
        assert listed[0]["size_bytes"] == sum(int(r["size_bytes"]) for r in rows if r["model"] == mine)
        assert [m["model"] for b in json.loads(seen["/api/leaderboard"][1]).values() for m in b["models"]] == [mine]
        counted = json.loads(server.get("/api/facets?search=mnist", parity)[2])  # counts of its one model alone
        assert all(sum(counted[f].values()) == 1 for f in ("task", "arch", "dataset")), counted  # one value each
        assert sum(json.loads(server.get("/api/facets?search=mnist")[2])["task"].values()) > 1
        versions = json.loads(seen["/api/versions"][1])
        assert versions and all(v["models"] is None and v["checkpoints"] is None for v in versions)
        assert not [v for v in versions if v["kind"] == "release"]  # mnist-shufflenet@v1.2.0 names another model
        model = json.loads(seen[f"/api/models/{mine}"][1])
        assert model["lineage"]["ancestors"] == [] and model["base_models"] == []
        assert all(c["parent"] is None or c["parent"].startswith(mine + "@") for c in model["checkpoints"])
        # another model's bytes, by their content address, answer as bytes that are not in the zoo
        a = server.get(f"/files/by-sha256/{hidden_row['sha256']}", parity)
        b = server.get(f"/files/by-sha256/{'0' * 64}", parity)
        assert a[0] == b[0] == 404 and a[2].replace(hidden_row["sha256"][:12].encode(), b"X") == b[2].replace(b"0" * 12, b"X")
        assert server.get(f"/files/by-sha256/{hidden_row['sha256']}")[0] == 200
        for hidden, missing in [("/api/models/wine-linear/history", "/api/models/no-such-model/history")]:
            a, b = server.get(hidden, parity), server.get(missing, parity)
            assert a[0] == b[0] == 404 and a[2].replace(b"wine-linear", b"X") == b[2].replace(b"no-such-model", b"X")
        # the Hub's answers are cut the same way: the parent's card names no child it does not read, the child's
        # card no base model; the commit id is of what this token is served, and resolves back for it
        info = json.loads(server.get(f"/api/models/zoo/{mine}", parity)[2])
        assert "base_model" not in info["cardData"]
        assert "base_model" in json.loads(server.get(f"/api/models/zoo/{mine}")[2])["cardData"]
        parent = {"Authorization": f"Bearer {made['parent']}"}
        readme = "/zoo/mnist-mobilenetv3/resolve/main/README.md"
        assert mine.encode() in server.get(readme)[2]
        for path in (readme, "/api/models/zoo/mnist-mobilenetv3", "/api/models/zoo/mnist-mobilenetv3/refs",
                     "/api/models/zoo/mnist-mobilenetv3/tree/main?recursive=true"):
            status, headers, body = server.get(path, parent)
            assert status == 200 and b"mnist-parity" not in body, (path, body[:300])
        cut = json.loads(server.get("/api/models/zoo/mnist-mobilenetv3", parent)[2])["sha"]
        assert cut != json.loads(server.get("/api/models/zoo/mnist-mobilenetv3")[2])["sha"]
        status, headers, body = server.get(f"/zoo/mnist-mobilenetv3/resolve/{cut}/README.md", parent)
        assert status == 200 and headers["x-repo-commit"] == cut and b"mnist-parity" not in body
    finally:
        server.stop()


def test_non_loopback_host_needs_tokens_or_allow_anonymous(hub):
    root = hub[0]
    proc = subprocess.run([str(ZOO_BIN), "-C", str(root), "serve", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--tokens" in proc.stderr and "--allow-anonymous" in proc.stderr
    bad = subprocess.run([str(ZOO_BIN), "-C", str(root), "serve", "--hub-namespace", "Bad--Name"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--hub-namespace" in bad.stderr


def test_older_client_generation(hub, tmp_path):
    """huggingface_hub 0.26.x (which needs `siblings` and reads the commit from HEAD answers), in a venv of
    its own: downloads, a snapshot at a step and the API calls."""
    root, server, rows, base = hub
    venv = tmp_path / "hub-0.26"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=180)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "huggingface_hub==0.26.5"], capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"cannot install huggingface_hub 0.26.5 here: {pip.stderr.strip().splitlines()[-1:]}")
    first = _one_file(rows, "mnist-mobilenetv3")[0]
    code = textwrap.dedent(f"""
        import json, pathlib
        import huggingface_hub
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        assert huggingface_hub.__version__.startswith("0.26."), huggingface_hub.__version__
        api = HfApi()
        path = snapshot_download("zoo/mnist-mobilenetv3", revision="step-{first['step']}")
        one = hf_hub_download("zoo/mnist-mobilenetv3", "model.safetensors", revision="v1@{first['step']}")
        print(json.dumps({{"snapshot": sorted(p.name for p in pathlib.Path(path).iterdir() if p.is_file()), "one": one,
                           "weights": str(pathlib.Path(path) / "model.safetensors"),
                           "files": api.list_repo_files("zoo/mnist-mobilenetv3"),
                           "sha": api.model_info("zoo/mnist-mobilenetv3").sha,
                           "main": api.list_repo_refs("zoo/mnist-mobilenetv3").branches[0].target_commit}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN", "PYTHONPATH")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.port}", HF_HOME=str(base / "hf-old"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["snapshot"] == sorted(f for f in got["files"] if not f.startswith(".eval_results/")) \
        == ["README.md", "config.json", "model.safetensors"]
    assert _sha(got["weights"]) == first["sha256"] == _sha(got["one"])
    assert HEX40.fullmatch(got["sha"]) and got["sha"] == got["main"]


KEY_ID, SECRET = "AKIAZOOHUBTEST000001", "zoo-hub-test-secret-never-sent"  # the emulator takes any


def _pushed_clone(origin: Path, clone: Path) -> Path:
    """A clone of ``origin`` (whose default remote is the emulator's S3), both given the emulator's keys in
    their local DVC config, after ``zoo push`` from ``origin``."""
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    for root in (origin, clone):
        for key, value in (("access_key_id", KEY_ID), ("secret_access_key", SECRET)):
            assert run_zoo("remote", "modify", "s3", key, value, "--local", cwd=root).code == 0
    r = run_zoo("push", cwd=origin)
    assert r.code == 0, r.err
    return clone


def test_redirect_to_storage_sends_clients_to_presigned_s3_urls(template, tmp_path, monkeypatch):  # noqa: F811
    """`--redirect-to-storage`: the weights' GET is a 302 to a presigned URL of the object on the S3 remote,
    signed with the credentials in the served clone's .dvc/config.local (none in the environment of the server
    or the client); the client gets exactly the table's bytes from storage and the server reads none of them.
    (The emulator's --auth mode checks only Authorization headers, not presigned queries, so it runs without.)"""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))  # no default chain either
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    s3 = MotoServer(tmp_path / "moto")
    try:
        origin = tmp_path / "origin"
        subprocess.run(["cp", "-a", str(template), str(origin)], check=True)
        assert run_zoo("remote", "add", "s3", "s3://zoo/hub", "--endpoint", s3.endpoint, "--default",
                       cwd=origin).code == 0
        git("commit", "-qam", "S3 remote", cwd=origin)
        clone = _pushed_clone(origin, tmp_path / "clone")
        rows = {r["path"]: r for r in csv.DictReader(io.StringIO((clone / TABLE).read_text()))}
        weights, small = rows[A20], rows[A10]
        key = md5_key(Origin(origin, "hub", s3.endpoint), A20)
        server = Server(clone, "--redirect-to-storage", "--presign-seconds", "300")
        try:
            url = f"/zoo/alpha/resolve/step-{weights['step']}/model.safetensors"
            s3.clear_log()
            r = server.request("HEAD", url)  # answered from the table: no storage call
            r.read()
            assert r.status == 200 and r.getheader("Content-Length") == weights["size_bytes"]
            assert r.getheader("ETag") == f'"{weights["sha256"]}"' and r.getheader("Location") is None
            assert s3.requests() == []
            status, headers, body = server.get(url)
            assert status == 302 and body == b"", (status, body[:300])
            assert headers["x-linked-etag"] == f'"{weights["sha256"]}"' and headers["x-linked-size"] == weights["size_bytes"]
            assert HEX40.fullmatch(headers["x-repo-commit"]) and "X-Amz-Expires=300" in headers["location"]
            assert f"/zoo/{key}?" in headers["location"] and SECRET not in headers["location"]
            assert f"X-Amz-Credential={KEY_ID}%2F" in headers["location"]  # config.local's key
            # generated files are still served by the zoo itself
            status, headers, body = server.get(f"/zoo/alpha/resolve/step-{weights['step']}/config.json")
            assert status == 200 and json.loads(body)["zoo"]["ref"] == f"alpha@{weights['step']}"
            s3.clear_log()
            got = client((clone, server, [], tmp_path), f"""
                import json
                from huggingface_hub import hf_hub_download
                print(json.dumps({{"big": hf_hub_download("zoo/alpha", "model.safetensors", revision="step-{weights['step']}"),
                                   "small": hf_hub_download("zoo/alpha", "model.safetensors", revision="step-{small['step']}"),
                                   "readme": hf_hub_download("zoo/alpha", "README.md", revision="step-{small['step']}")}}))
            """, cache="hf-s3")
        finally:
            server.stop()
        assert _sha(got["big"]) == weights["sha256"] and _sha(got["small"]) == small["sha256"]
        assert Path(got["readme"]).read_text().startswith("---\n")
        gets = [q for q in s3.requests() if q.is_object_get and q.key == key]
        assert len(gets) == 1 and gets[0].status == 200 and "X-Amz-Signature=" in gets[0].query
        assert gets[0].bytes_out == int(weights["size_bytes"])
        # the server fetched only the folder's small manifest, and holds no checkpoint bytes
        cached = [p for p in (clone / ".dvc").rglob("*") if p.is_file() and p.stat().st_size >= int(small["size_bytes"])]
        assert cached == [] and not list((clone / "zoo" / "checkpoints").rglob("*.safetensors"))
        # a clone whose default remote is not S3: the option is refused at start, in one line
        refused = subprocess.run([str(ZOO_BIN), "-C", str(template), "serve", "--redirect-to-storage", "--port", "0"],
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "--redirect-to-storage" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        for args, needle in ((["--presign-seconds", "300"], "--redirect-to-storage"),
                             (["--redirect-to-storage", "--presign-seconds", "5"], "60 to 3600")):
            bad = subprocess.run([str(ZOO_BIN), "-C", str(clone), "serve", "--port", "0", *args],
                                 capture_output=True, text=True, timeout=120)
            assert bad.returncode != 0 and "--presign-seconds" in bad.stderr and needle in bad.stderr, bad.stderr
    finally:
        s3.stop()


def test_redirect_to_storage_a_folder_checkpoints_files(empty_zoo, tmp_path, monkeypatch):
    """A folder checkpoint's files (the table records no size for them): HEAD takes the size from the object's
    metadata on S3 (no bytes read, none fetched into the clone), GET redirects to the object, nested names too."""
    from test_folder_checkpoints import _folder

    from checkpoint_zoo import Zoo

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    s3 = MotoServer(tmp_path / "moto")
    try:
        src = _folder(tmp_path / "in" / "ckpt")
        assert run_zoo("remote", "add", "s3", "s3://zoo/folders", "--endpoint", s3.endpoint, "--default",
                       cwd=empty_zoo).code == 0
        with Zoo(empty_zoo) as zoo:
            zoo.add(src, model="gamma", step=1, arch="linear", task="tabular-classification", dataset="wine",
                    license="MIT")
        git("add", "-A", cwd=empty_zoo)
        git("commit", "-qm", "a folder checkpoint on S3", cwd=empty_zoo)
        clone = _pushed_clone(empty_zoo, tmp_path / "clone")
        server = Server(clone, "--redirect-to-storage")
        try:
            s3.clear_log()
            for name in ("model-00002-of-00002.safetensors", "1_Pooling/config.json"):
                url = f"/zoo/gamma/resolve/step-1/{name}"
                r = server.request("HEAD", url)
                r.read()
                assert r.status == 200 and int(r.getheader("Content-Length")) == (src / name).stat().st_size, name
                assert r.getheader("ETag") == f'"{_sha(src / name)}"'
                status, headers, _ = server.get(url)
                assert status == 302 and headers["x-linked-size"] == str((src / name).stat().st_size), name
            # the server read the manifest, the objects' sizes, and only the folder's own config.json (merged into
            # the config.json it serves); never a weights file
            own = hashlib.md5((src / "config.json").read_bytes()).hexdigest()
            read = {q.key for q in s3.requests() if q.is_object_get and "X-Amz-Signature" not in q.query}
            assert {k for k in read if not k.endswith(".dir")} <= {f"folders/files/md5/{own[:2]}/{own[2:]}"}, read
            got = client((clone, server, [], tmp_path), """
                import json
                from huggingface_hub import hf_hub_download
                print(json.dumps({n: hf_hub_download("zoo/gamma", n, revision="step-1")
                                  for n in ("model-00001-of-00002.safetensors", "1_Pooling/config.json")}))
            """, cache="hf-folder")
        finally:
            server.stop()
        for name, path in got.items():
            assert _sha(path) == _sha(src / name), name
        assert not [p for p in (clone / ".dvc").rglob("*") if p.is_file() and p.suffix != ".dir"
                    and p.stat().st_size > 100 and "cache" in p.parts]
        assert not (clone / "zoo" / "checkpoints" / "gamma").exists()
    finally:
        s3.stop()
