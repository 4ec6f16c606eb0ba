"""Releases and stages in GTO's tags and DVC's ``artifacts:``: real ``gto`` and ``dvc artifacts get`` read them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, ran_stages, repro, run_zoo, sh, snapshot, write_safetensors

BIN = Path(sys.executable).parent


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tags(root: Path) -> list[str]:
    return git("tag", "--list", cwd=root).split()


@pytest.fixture
def released(small_zoo):
    """alpha@10 released as v1.0.0 and alpha@20 as v1.1.0; prod held by v1.0.0, then moved to v1.1.0."""
    for args in (("release", "alpha@10", "v1.0.0", "-m", "first cut"), ("release", "alpha@20", "1.1.0"),
                 ("stage", "alpha@v1.0.0", "prod"), ("stage", "alpha@v1.1.0", "prod")):
        r = run_zoo(*args, cwd=small_zoo)
        assert r.code == 0, (args, r.err)
    return small_zoo


def test_gto_and_dvc_artifacts_read_the_zoos_releases_and_stages(released, tmp_path):
    from checkpoint_zoo import Zoo

    with Zoo(released) as zoo:
        want = {s: zoo.get(f"alpha@{s}").sha256 for s in (10, 20)}
    shown = json.loads(subprocess.run([str(BIN / "gto"), "show", "--json"], cwd=released, capture_output=True,
                                      text=True, check=True).stdout)
    assert shown["alpha"]["version"] == "v1.1.0" and shown["alpha"]["stage"]["prod"] == "v1.1.0"
    clone = tmp_path / "clone"
    git("clone", "-q", str(released), str(clone), cwd=tmp_path)
    for how, step in ((("--rev", "v1.0.0"), 10), (("--stage", "prod"), 20)):
        out = tmp_path / f"get-{step}"
        out.mkdir()
        subprocess.run([str(BIN / "dvc"), "artifacts", "get", str(clone), "alpha", *how], cwd=out, check=True,
                       capture_output=True)
        (got,) = list(out.iterdir())
        assert _sha(got) == want[step], how


def test_stage_and_release_names_resolve_everywhere(released):
    from checkpoint_zoo import Zoo

    r = run_zoo("show", "alpha@prod", "--format", "json", cwd=released)
    assert r.code == 0 and json.loads(r.out)["step"] == 20
    assert json.loads(run_zoo("show", "alpha@v1.0.0", "--format", "json", cwd=released).out)["step"] == 10
    with Zoo(released) as zoo:
        assert zoo.get("alpha@prod").step == 20 and zoo.get("alpha@v1.0.0").step == 10
    with Zoo(str(released), rev="HEAD") as zoo:
        assert zoo.get("alpha@prod").step == 20
    r = run_zoo("show", "alpha@staging", cwd=released)
    assert r.code == 1 and "no release of alpha is in stage 'staging' (its stages: prod)" in r.err


def test_versions_lists_releases_not_stage_tags(released):
    found = {(v["name"], v["kind"]) for v in json.loads(run_zoo("versions", "--format", "json", cwd=released).out)}
    assert {("alpha@v1.0.0", "release"), ("alpha@v1.1.0", "release")} <= found
    assert not any("#" in name for name, _ in found)


def test_history_names_who_when_and_the_holder_at_a_date(released):
    data = json.loads(run_zoo("history", "alpha", "--format", "json", cwd=released).out)
    actions = [(e["action"], e["version"], e["stage"], e["checkpoint"]) for e in data["events"]]
    assert actions == [("release", "v1.0.0", None, "alpha@10"), ("release", "v1.1.0", None, "alpha@20"),
                       ("assign", "v1.0.0", "prod", "alpha@10"), ("assign", "v1.1.0", "prod", "alpha@20")]
    assert all(e["by"].startswith(git("config", "user.name", cwd=released).strip()) for e in data["events"])
    assert data["events"][0]["message"].startswith("first cut")
    assert data["stages"]["prod"]["checkpoint"] == "alpha@20"
    first_assign = data["events"][2]["date"]
    then = json.loads(run_zoo("history", "alpha", "--at", first_assign, "--format", "json", cwd=released).out)
    assert then["stages"]["prod"] == {"version": "v1.0.0", "checkpoint": "alpha@10", "since": first_assign}
    before = json.loads(run_zoo("history", "alpha", "--at", "2000-01-01", "--format", "json", cwd=released).out)
    assert before["stages"] == {}
    text = run_zoo("history", "alpha", cwd=released).out
    assert "stages now: prod: v1.1.0" in text
    assert run_zoo("stage", "--remove", "alpha", "prod", cwd=released).code == 0
    with pytest.raises(Exception, match="no release of alpha is in stage 'prod'"):
        from checkpoint_zoo import Zoo

        with Zoo(released) as zoo:
            zoo.get("alpha@prod")


@pytest.mark.parametrize("args, says", [
    (("release", "alpha@20", "v1.0.0"), "alpha@v1.0.0 exists already"),
    (("release", "alpha@20", "v1.2"), "not a semantic version"),
    (("release", "alpha@99", "v2.0.0"), "alpha has no step 99"),
    (("release", "nosuch@1", "v2.0.0"), "unknown model 'nosuch'"),
    (("stage", "alpha@v9.9.9", "prod"), "alpha has no release v9.9.9"),
    (("stage", "alpha@v1.0.0", "best"), "stage 'best': already means something"),
    (("stage", "--remove", "alpha", "staging"), "alpha has nothing in stage 'staging'"),
])
def test_bad_registry_input_is_refused_with_nothing_changed(released, args, says):
    before, tags, head = snapshot(released), _tags(released), git("rev-parse", "HEAD", cwd=released)
    r = run_zoo(*args, cwd=released)
    assert r.code != 0 and says in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert (snapshot(released), _tags(released), git("rev-parse", "HEAD", cwd=released)) == (before, tags, head)


def test_release_refuses_uncommitted_checkpoints_names_gto_cannot_write_and_protected_stages(small_zoo, tmp_path):
    from checkpoint_zoo import Zoo

    with Zoo(small_zoo) as zoo:
        zoo.add(write_safetensors(tmp_path / "g.safetensors", seed=9), model="ga.mma", step=1, arch="linear",
                task="tabular-classification", dataset="wine", license="MIT")
        zoo.add(write_safetensors(tmp_path / "d.safetensors", seed=8), model="delta", step=1, arch="linear",
                task="tabular-classification", dataset="wine", license="MIT")
    before, head = snapshot(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)
    r = run_zoo("release", "ga.mma@1", "v1.0.0", cwd=small_zoo)
    assert r.code == 1 and "GTO (and DVC's model registry) cannot name it: '.' not allowed" in r.err
    r = run_zoo("release", "delta@1", "v1.0.0", cwd=small_zoo)
    assert r.code == 1 and "delta@1 is not committed yet" in r.err
    (small_zoo / "conf/stages.yaml").write_text("protected: [prod]\n")
    r = run_zoo("stage", "alpha@10", "prod", cwd=small_zoo)
    assert r.code == 1 and "stage 'prod' is protected (conf/stages.yaml)" in r.err
    (small_zoo / "conf/stages.yaml").unlink()
    assert (snapshot(small_zoo), _tags(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)) == (before, [], head)
    r = run_zoo("stage", "alpha@10", "dev", cwd=small_zoo)  # a bare step may hold an unprotected stage
    assert r.code == 0 and _tags(small_zoo) == ["alpha#dev#1"], r.err
    assert json.loads(run_zoo("show", "alpha@dev", "--format", "json", cwd=small_zoo).out)["step"] == 10


def test_gc_removes_exactly_the_unreferenced_objects_after_the_grace_period(released, tmp_path):
    from checkpoint_zoo import Zoo

    with Zoo(released) as zoo:
        zoo.add(write_safetensors(tmp_path / "d.safetensors", seed=8), model="delta", step=1, arch="linear",
                task="tabular-classification", dataset="wine", license="MIT")
        zoo.push()
    git("add", "-A", cwd=released)
    git("commit", "-qm", "delta", cwd=released)
    assert run_zoo("rm", "delta@1", cwd=released).code == 0
    git("commit", "-qm", "no delta", cwd=released)
    remote = released.parent / "remote"
    objects = {p for p in remote.rglob("*") if p.is_file()}

    r = run_zoo("gc", "--dry-run", cwd=released)
    assert r.code == 0 and "would remove 0 object(s)" in r.out and "younger than 7 day(s)" in r.out, r.out
    r = run_zoo("gc", "--dry-run", "--grace-days", "0", cwd=released)
    assert r.code == 0 and "would remove 2 object(s)" in r.out, r.out  # delta's file and its folder manifest
    assert {p for p in remote.rglob("*") if p.is_file()} == objects
    r = run_zoo("gc", "--grace-days", "0", cwd=released)
    assert r.code == 0 and "removed 2 object(s)" in r.out, r.out
    assert len({p for p in remote.rglob("*") if p.is_file()}) == len(objects) - 2
    clone = tmp_path / "clone"
    git("clone", "-q", str(released), str(clone), cwd=tmp_path)
    for ref in ("alpha@10", "alpha@20", "beta@5"):  # tags and the branch still have all they need
        assert run_zoo("pull", ref, cwd=clone).code == 0, ref


def test_zoo_serve_resolves_releases_and_stages_and_serves_the_history(released, browser):
    from test_serve import Server
    from test_site import _css, _open

    from checkpoint_zoo import Zoo

    with Zoo(released) as zoo:
        want = {s: zoo.get(f"alpha@{s}").sha256 for s in (10, 20)}
    server = Server(released)
    try:
        assert server.json("/api/models/alpha/checkpoints/prod")["step"] == 20
        assert server.json("/api/models/alpha/checkpoints/v1.0.0")["step"] == 10
        code, headers, body = server.get("/files/alpha/prod")
        assert code == 200 and hashlib.sha256(body).hexdigest() == want[20]
        model = server.json("/api/models/alpha")
        assert model["releases"] == {"v1.0.0": "alpha@10", "v1.1.0": "alpha@20"}
        assert model["stages"]["prod"]["version"] == "v1.1.0"
        history = server.json("/api/models/alpha/history")
        assert [e["action"] for e in history["events"]] == ["release", "release", "assign", "assign"]
        assert history["stages"]["prod"]["checkpoint"] == "alpha@20"
        assert server.json(f"/api/models/alpha/history?at={history['events'][2]['date'].replace('+', '%2B')}"
                           )["stages"]["prod"]["checkpoint"] == "alpha@10"
        code, _, body = server.get("/api/models/alpha/checkpoints/staging")
        assert code == 404 and b"no release of alpha is in stage 'staging'" in body
        # the page shows each model's releases and who holds each stage, and follows a stage move
        _open(browser, f"http://127.0.0.1:{server.port}/#/model/alpha", "#sidebar")
        assert _css(browser, "#stages li")[0].text == "prod: alpha@20 (v1.1.0)"
        assert [li.text for li in _css(browser, "#releases li")] == ["v1.0.0: alpha@10", "v1.1.0: alpha@20"]
        assert run_zoo("stage", "alpha@v1.0.0", "prod", cwd=released).code == 0
        _open(browser, f"http://127.0.0.1:{server.port}/#/model/alpha", "#sidebar")
        assert _css(browser, "#stages li")[0].text == "prod: alpha@10 (v1.0.0)"
    finally:
        server.stop()


def test_one_models_tags_are_read_by_name_whatever_the_others(tmp_path):
    """A verb on one model asks git for that model's tags only; a longer name sharing its prefix, another model's
    stage tags and glob characters in the name never match."""
    from checkpoint_zoo.workspace.tags import read_tags

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    who = ("-c", "user.name=t", "-c", "user.email=t@t")
    git(*who, "commit", "-q", "--allow-empty", "-m", "c", cwd=tmp_path)
    for name in ("a@v1.0.0", "a#prod#1", "ab@v1.0.0", "b#prod#2", "x-y@v0.1.0"):
        git(*who, "tag", "-a", "-m", "m", name, cwd=tmp_path)
    assert sorted(t.name for t in read_tags(tmp_path, "a")) == ["a#prod#1", "a@v1.0.0"]
    assert [t.name for t in read_tags(tmp_path, "x-y")] == ["x-y@v0.1.0"]
    assert read_tags(tmp_path, "*") == [] and read_tags(tmp_path, "[ab]") == []
    assert len(read_tags(tmp_path)) == 5


def _outputs(root: Path) -> dict[str, bytes]:
    return {p: (root / p).read_bytes() for p in ("zoo/index.json", "zoo/INDEX.md", "zoo/cards/alpha.md",
                                                 "zoo/metrics/registry.json", "dvc.lock", "site/data.js")}


def test_dvc_repro_shows_releases_and_the_current_stage_holders(tmp_path, browser):
    from test_site import _css, _open

    root = tmp_path / "team"
    assert run_zoo("init", str(root), "--remote", str(tmp_path / "remote"), "--reference", cwd=tmp_path).code == 0
    for model, step, seed in (("alpha", 10, 1), ("alpha", 20, 2)):
        f = write_safetensors(tmp_path / f"{model}-{step}.safetensors", seed=seed)
        r = run_zoo("add", str(f), f"--model={model}", f"--step={step}", "--arch=linear",
                    "--task=tabular-classification", "--dataset=wine", "--license=MIT", cwd=root)
        assert r.code == 0, r.err
    assert "registry" in ran_stages(repro(root).stdout)
    assert run_zoo("commit", "--push", "-m", "alpha", cwd=root).code == 0
    sha10 = _sha(root / "zoo/checkpoints/alpha/step-00000010.safetensors")
    for args in (("release", "alpha@10", "v1.0.0"), ("stage", "alpha@v1.0.0", "prod")):
        assert run_zoo(*args, cwd=root).code == 0
    assert ran_stages(repro(root).stdout) == ["registry", "index"]
    alpha = json.loads((root / "zoo/index.json").read_text())["models"]["alpha"]
    assert [(r["version"], r["step"], r["sha256"]) for r in alpha["releases"]] == [("v1.0.0", 10, sha10)]
    assert alpha["stages"]["prod"]["version"] == "v1.0.0" and alpha["stages"]["prod"]["step"] == 10
    card = (root / "zoo/cards/alpha.md").read_text()
    assert "## Releases" in card and "| v1.0.0 | alpha@10 |" in card and "Stages: prod: v1.0.0 (step 10)." in card
    assert "| alpha | v1.0.0 (step 10) | prod: v1.0.0 (step 10) |" in (root / "zoo/INDEX.md").read_text()
    assert '"prod":{"checkpoint":"alpha@10"' in (root / "site/data.js").read_text()

    for args in (("release", "alpha@20", "v1.1.0"), ("stage", "alpha@v1.1.0", "prod")):
        assert run_zoo(*args, cwd=root).code == 0
    assert ran_stages(repro(root).stdout) == ["registry", "index"]
    alpha = json.loads((root / "zoo/index.json").read_text())["models"]["alpha"]
    assert [r["version"] for r in alpha["releases"]] == ["v1.0.0", "v1.1.0"]
    assert alpha["stages"]["prod"]["version"] == "v1.1.0" and alpha["stages"]["prod"]["step"] == 20
    assert "prod: v1.1.0 (step 20)" in (root / "zoo/INDEX.md").read_text()
    # `zoo serve` renders the same Releases section from the tags as the index stage from registry.json
    from test_serve import Server

    def releases_of(card: str) -> str:
        return card[card.index("## Releases"):card.index("## Usage")]

    server = Server(root)
    try:
        served = server.json("/api/models/alpha")["card"]["markdown"]
    finally:
        server.stop()
    assert releases_of(served) == releases_of((root / "zoo/cards/alpha.md").read_text())
    # the static page (from disk, its data.js) shows what the served page shows live
    _open(browser, (root / "site/index.html").as_uri() + "#/model/alpha", "#sidebar")
    assert _css(browser, "#stages li")[0].text == "prod: alpha@20 (v1.1.0)"
    assert [li.text for li in _css(browser, "#releases li")] == ["v1.0.0: alpha@10", "v1.1.0: alpha@20"]

    before, stamp = _outputs(root), (root / "zoo/metrics/registry.json").stat().st_mtime_ns
    assert ran_stages(repro(root).stdout) == ["registry"]  # a third run reads the tags and changes nothing
    assert _outputs(root) == before and (root / "zoo/metrics/registry.json").stat().st_mtime_ns == stamp
    assert run_zoo("commit", "-m", "outputs", cwd=root).code == 0  # `registry` in dvc status is not stale


def test_index_stage_reads_registry_json_not_tags_and_refuses_a_bad_one(tmp_path):
    root = tmp_path / "team"
    assert run_zoo("init", str(root), "--remote", str(tmp_path / "remote"), "--reference", cwd=tmp_path).code == 0
    f = write_safetensors(tmp_path / "a.safetensors", seed=1)
    assert run_zoo("add", str(f), "--model=alpha", "--step=10", "--arch=linear", "--task=tabular-classification",
                   "--dataset=wine", "--license=MIT", cwd=root).code == 0
    repro(root)
    assert run_zoo("commit", "--push", "-m", "alpha", cwd=root).code == 0
    assert run_zoo("release", "alpha@10", "v1.0.0", cwd=root).code == 0
    index = sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "index", cwd=root)  # registry.json not refreshed
    assert index.returncode == 0
    assert json.loads((root / "zoo/index.json").read_text())["models"]["alpha"]["releases"] == []
    registry = root / "zoo/metrics/registry.json"
    sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "registry", cwd=root)
    doc = json.loads(registry.read_text())
    doc["models"]["alpha"]["releases"][0]["version"] = "v1.0"
    registry.write_text(json.dumps(doc))
    before = _outputs(root)
    bad = sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "index", cwd=root, check=False)
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "index: zoo/metrics/registry.json: models.alpha.releases[0]: version 'v1.0' is not vMAJOR.MINOR.PATCH; "
        "run `dvc repro` (its registry stage rewrites the file from the git tags)"), bad.stderr
    assert _outputs(root) == before


def test_release_checks_a_folder_remote_by_path_and_refuses_what_it_lacks(small_zoo, tmp_path):
    data = (small_zoo / "zoo/checkpoints/alpha/step-00000010.safetensors").read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    obj = tmp_path / "remote/files/md5" / md5[:2] / md5[2:]
    elsewhere = tmp_path / "elsewhere/files/md5" / md5[:2]
    elsewhere.mkdir(parents=True)
    obj.rename(elsewhere / md5[2:])
    before, head = snapshot(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)
    r = run_zoo("release", "alpha@10", "v1.0.0", cwd=small_zoo)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
    assert "alpha@10 is not on remote 'local'" in r.err and "`zoo push alpha@10` first" in r.err, r.err
    assert (snapshot(small_zoo), _tags(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)) == (before, [], head)
    # the folder's manifest moves too; config.local's url (relative to .dvc/) wins over .dvc/config's
    for p in (tmp_path / "remote/files/md5").rglob("*.dir"):
        (tmp_path / "elsewhere" / p.relative_to(tmp_path / "remote")).parent.mkdir(parents=True, exist_ok=True)
        p.rename(tmp_path / "elsewhere" / p.relative_to(tmp_path / "remote"))
    (small_zoo / ".dvc/config.local").write_text("['remote \"local\"']\n    url = ../../elsewhere\n")
    script = ("import sys; from checkpoint_zoo import Zoo; Zoo(sys.argv[1]).release('alpha@10', 'v1.0.0'); "
              "print(sorted(m for m in sys.modules if m == 'dvc' or m.startswith('dvc.')))")
    out = subprocess.run([sys.executable, "-c", script, str(small_zoo)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr  # DVC never imported
    assert _tags(small_zoo) == ["alpha@v1.0.0"]


def test_the_folder_remote_reader_finds_dvcs_own_config_files(small_zoo):
    from dvc.config import Config

    from checkpoint_zoo.storage.dvc import exists

    files = Config(dvc_dir=str(small_zoo / ".dvc")).files
    assert [str(p) for p in exists.config_files(small_zoo)] == [files[k] for k in ("system", "global", "repo", "local")]


def test_release_checks_an_s3_remote_by_head_without_dvc(small_zoo, s3, monkeypatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    r = run_zoo("remote", "add", "s3", "s3://zoo/rel", "--endpoint", s3.endpoint, "--default", cwd=small_zoo)
    assert r.code == 0, r.err
    assert run_zoo("push", cwd=small_zoo).code == 0
    git("commit", "-qam", "S3 remote", cwd=small_zoo)
    md5 = hashlib.md5((small_zoo / "zoo/checkpoints/alpha/step-00000010.safetensors").read_bytes()).hexdigest()
    s3.client().delete_object(Bucket="zoo", Key=f"rel/files/md5/{md5[:2]}/{md5[2:]}")
    before, head = snapshot(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)
    r = run_zoo("release", "alpha@10", "v1.0.0", cwd=small_zoo)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
    assert "alpha@10 is not on remote 's3'" in r.err and "`zoo push alpha@10` first" in r.err, r.err
    assert (snapshot(small_zoo), _tags(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)) == (before, [], head)
    script = ("import sys; from checkpoint_zoo import Zoo; Zoo(sys.argv[1]).release('alpha@20', 'v1.0.0'); "
              "print(sorted(m for m in sys.modules if m == 'dvc' or m.startswith('dvc.')))")
    out = subprocess.run([sys.executable, "-c", script, str(small_zoo)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
    assert _tags(small_zoo) == ["alpha@v1.0.0"]


def test_release_refuses_an_uncommitted_dvc_yaml_and_adds_a_new_one(small_zoo):
    assert not (small_zoo / "dvc.yaml").exists()
    assert run_zoo("release", "alpha@10", "v1.0.0", cwd=small_zoo).code == 0  # dvc.yaml new to git: added
    assert git("ls-files", "dvc.yaml", cwd=small_zoo).strip() == "dvc.yaml"
    for dirty in ("edit", "staged"):
        (small_zoo / "dvc.yaml").write_text((small_zoo / "dvc.yaml").read_text() + "# note\n")
        if dirty == "staged":
            git("add", "dvc.yaml", cwd=small_zoo)
        before, head = snapshot(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)
        r = run_zoo("release", "alpha@20", "v1.1.0", cwd=small_zoo)
        assert r.code == 1 and "dvc.yaml has changes that are not committed" in r.err, (dirty, r.err)
        assert (snapshot(small_zoo), _tags(small_zoo), git("rev-parse", "HEAD", cwd=small_zoo)) == (
            before, ["alpha@v1.0.0"], head)
        git("checkout", "HEAD", "--", "dvc.yaml", cwd=small_zoo)
    assert run_zoo("release", "alpha@20", "v1.1.0", cwd=small_zoo).code == 0  # a tracked dvc.yaml: committed as is
    assert git("status", "--porcelain", "--", "dvc.yaml", cwd=small_zoo) == ""


def test_a_model_named_as_the_hub_namespace_keeps_its_history_and_card_routes(released):
    """`/api/models/alpha/history` is also the Hub's shape for repo `alpha/history`: with `--hub-namespace alpha`
    the zoo's own routes answer everyone but a Hub client, which still gets the Hub's answer."""
    from test_serve import Server

    server = Server(released, "--hub-namespace", "alpha")
    try:
        history = server.json("/api/models/alpha/history")
        assert history["stages"]["prod"]["checkpoint"] == "alpha@20"
        code, _, body = server.get("/api/models/alpha/card")
        assert code == 200 and b"alpha" in body
        code, headers, _ = server.get("/api/models/alpha/history", {"User-Agent": "hf_hub/1.0; python/3.11"})
        assert code == 404 and headers.get("x-error-code") == "RepoNotFound", (code, headers)
    finally:
        server.stop()


def test_a_dvc_yaml_whose_artifacts_are_not_a_mapping_names_no_artifact(tmp_path):
    """Another revision's ``dvc.yaml`` is someone else's data: ``artifacts:`` as a list names nothing, read one
    commit at a time or many at once."""
    from checkpoint_zoo.workspace.tags import artifact_at, artifacts_at

    git("init", "-q", str(tmp_path), cwd=tmp_path)
    (tmp_path / "dvc.yaml").write_text("artifacts:\n  - alpha\n")
    git("add", "dvc.yaml", cwd=tmp_path)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "list", cwd=tmp_path)
    commit = git("rev-parse", "HEAD", cwd=tmp_path).strip()
    assert artifact_at(tmp_path / ".git", commit, "alpha") is None
    assert artifacts_at(tmp_path / ".git", [(commit, "alpha")]) == {(commit, "alpha"): None}


def _served_cards(server, root: Path, cache: Path) -> dict:
    """What `zoo serve` shows as alpha's card: the API's markdown, the page's HTML and data.js, and the Hub's
    README.md as huggingface_hub downloads it (one cache, so an unchanged etag would give the old file)."""
    from test_hub_protocol import client

    hub = client((root, server, [], cache), """
        import json
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
        meta = get_hf_file_metadata(hf_hub_url("zoo/alpha", "README.md"))
        with open(hf_hub_download("zoo/alpha", "README.md")) as f:
            print(json.dumps({"etag": meta.etag, "commit": meta.commit_hash, "text": f.read()}))
    """)
    return {"markdown": server.json("/api/models/alpha")["card"]["markdown"],
            "html": server.json("/api/models/alpha/card")["html"], "data": server.get("/data.js")[2].decode(), **hub}


def test_the_served_card_and_the_hub_readme_show_releases_from_the_tags_now(released, tmp_path):
    """The card `zoo serve` renders has the static card's Releases section, read from the tags at each request: a
    stage move shows on the next request, and the Hub's README.md gets a new etag and commit."""
    from test_serve import Server

    server = Server(released)
    try:
        before = _served_cards(server, released, tmp_path)
        for where in ("markdown", "html", "data", "text"):
            assert "Stages: prod: v1.1.0 (step 20)." in before[where], where
            assert "Releases" in before[where], where
        assert "| v1.0.0 | alpha@10 |" in before["markdown"] and "| v1.1.0 | alpha@20 |" in before["text"]
        assert run_zoo("stage", "alpha@v1.0.0", "prod", cwd=released).code == 0
        after = _served_cards(server, released, tmp_path)
        for where in ("markdown", "html", "data", "text"):
            assert "Stages: prod: v1.0.0 (step 10)." in after[where] and "v1.1.0 (step 20)." not in after[where], where
        assert after["etag"] != before["etag"] and after["commit"] != before["commit"]
    finally:
        server.stop()


def test_the_tags_stamp_moves_with_every_tag_change_and_is_none_while_racy(tmp_path):
    """`zoo serve` reads the tags again only when their stamp moves: every way git changes a tag (a new one, a
    moved one, a deleted one, packing) makes it unknown at once (a recent change is never trusted), and an aged
    repository's stamp stays put while nothing changes."""
    import os
    import time

    from checkpoint_zoo.workspace.tags import tags_stamp

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    who = ("-c", "user.name=t", "-c", "user.email=t@t")
    git(*who, "commit", "-q", "--allow-empty", "-m", "c", cwd=tmp_path)
    base = time.time() - 3600

    def aged(k: int):  # as if the last change were long ago (each round at a time of its own)
        for p in (tmp_path / ".git/refs/tags", tmp_path / ".git/packed-refs"):
            if p.exists():
                os.utime(p, (base + k, base + k))
        return tags_stamp(tmp_path)

    assert aged(0) is not None and aged(0) == tags_stamp(tmp_path)
    changes = [("tag", "-a", "-m", "m", "a@v1.0.0"), ("tag", "-a", "-m", "m", "a#prod#1"), ("pack-refs", "--all"),
               ("tag", "-d", "a@v1.0.0"), ("tag", "-f", "-a", "-m", "moved", "a#prod#1", "HEAD")]
    for k, change in enumerate(changes, 1):
        git(*who, *change, cwd=tmp_path)
        assert tags_stamp(tmp_path) is None, change
        assert aged(k) is not None and tags_stamp(tmp_path) == aged(k), change
