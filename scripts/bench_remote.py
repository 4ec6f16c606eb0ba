"""Benchmarks of the zoo across a network (run through ``scripts/bench.py``): ``zoo serve``'s API under load and
its downloads against nginx, the Hugging Face clients against ``zoo serve``, and the S3 remote
(``bench_s3.py``: one checkpoint of many, 1 GiB, and the transfer comparison with s5cmd)."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    MIB,
    PYTHON,
    STEP_GAP,
    ZOO,
    Context,
    Result,
    build_pipeline_zoo,
    free_port,
    load_script,
    model_name,
    new_zoo,
    register_vector_arch,
    rss_mb,
    run,
    run_out,
    side_by_side,
    write_safetensors,
)
from bench_cli import ADD_ARGS


def bench_s3(ctx: Context) -> list[Result]:
    """The S3 remote against boto3 on the same moto server (``scripts/bench_s3.py``, whose docstring
    says how): ``zoo pull`` of one checkpoint of 10,000 (objects and bytes fetched, counted from the
    server's request log), and push/pull of a 1 GiB checkpoint as throughput ratios."""
    s3 = load_script("bench_s3")
    work = ctx.folder("s3")
    server = s3.Server(work)
    try:
        env = s3.child_env(work, server)
        models, steps = (2, 25) if ctx.quick else (100, 100)
        one = s3.bench_pull_one(work, server, env, models, steps, ctx.n(5, 1), ctx.quick)
        big = s3.bench_big(work, server, env, 16 if ctx.quick else 1024, ctx.n(3, 1), ctx.quick)
    except SystemExit as e:  # bench_s3's way to fail a check; here it must not end the other benchmarks
        raise RuntimeError(str(e)) from None
    finally:
        server.stop()
    rss = s3.RSS_MB
    n = f"{one['checkpoints']:,}"
    boto = one["boto3_download_s"]
    pull = Result("s3", f"zoo pull 1 of {n} from S3 ({one['object_bytes']:,} B)", one["zoo_pull_s"],
                  [rss["zoo pull one"]], "1.5 × boto3 download_file + 1 s", [1.5 * b + 1 for b in boto],
                  "only its object + manifest; ratio ≤ 1", one["met"],
                  f"fetched {len(one['objects_fetched'])} objects (object + folder manifest), "
                  f"{one['bytes_transferred_per_pull']:,} B in {one['requests_per_pull']} requests; "
                  f"first pull in the clone {one['zoo_pull_cold_s']:.2f} s")
    mib = big["bytes"] / MIB
    label = f"{mib:,.0f} MiB"
    return [
        Result("s3", "boto3 download_file of that object", boto, [rss["boto3 download one"]]),
        Result("s3", "dvc pull of that file -r s3", one["dvc_pull_s"], [rss["dvc pull one"]],
               "boto3 download_file", boto),
        pull,
        Result("s3", f"boto3 upload_file {label}", big["boto3_upload_file_s"], [rss["boto3 upload big"]],
               note=f"{big['boto3_upload_mib_s']} MiB/s"),
        Result("s3", f"zoo push {label}", big["zoo_push_s"], [rss["zoo push big"]], "boto3 upload_file",
               big["boto3_upload_file_s"], note=f"{big['push_mib_s']} MiB/s; dvc push {big['dvc_push_mib_s']} MiB/s"),
        Result("s3", f"boto3 download_file {label}", big["boto3_download_file_s"], [rss["boto3 download big"]],
               note=f"{big['boto3_download_mib_s']} MiB/s; get_object {big['boto3_get_object_mib_s']} MiB/s"),
        Result("s3", f"zoo pull {label}", big["zoo_pull_s"], [rss["zoo pull big"]], "boto3 download_file",
               big["boto3_download_file_s"], note=f"{big['pull_mib_s']} MiB/s; dvc pull {big['dvc_pull_mib_s']} MiB/s"),
        Result("s3", f"dvc push {label} -r s3", big["dvc_push_s"], [rss["dvc push big"]], "boto3 upload_file",
               big["boto3_upload_file_s"]),
        Result("s3", f"dvc pull {label} -r s3", big["dvc_pull_s"], [rss["dvc pull big"]], "boto3 download_file",
               big["boto3_download_file_s"]),
    ]


def bench_transfer(ctx: Context) -> list[Result]:
    """Push and pull of 1 GiB and of 2,000 × 64 KiB (``--quick``: 64 MiB and 200) by zoo, dvc, s5cmd and boto3
    on one moto server, interleaved (``scripts/bench_s3.py --only transfer``); zoo's target: ≥ 0.8 × s5cmd's
    throughput and never slower than dvc."""
    s3 = load_script("bench_s3")
    work = ctx.folder("transfer")
    server = s3.Server(work)
    try:
        found = s3.bench_transfer(work, server, s3.child_env(work, server), 64 if ctx.quick else 1024,
                                  200 if ctx.quick else 2000, 64, ctx.n(3, 1), ctx.quick)
    except SystemExit as e:  # bench_s3's way to fail a check; here it must not end the other benchmarks
        raise RuntimeError(str(e)) from None
    finally:
        server.stop()
    out = []
    for r in found:
        what = f"{r['bytes'] / MIB:,.0f} MiB in {r['files']:,} objects"
        for op in ("push", "pull"):
            base = r[f"s5cmd_{op}_s"]
            for way in ("s5cmd", "boto3", "dvc", "zoo_boto3", "zoo"):
                if f"{way}_{op}_s" not in r:  # zoo_boto3: the zoo without s5cmd, many small files only
                    continue
                judged = way == "zoo" and r["met"] is not None
                out.append(Result("transfer", f"{way} {op} {what}", r[f"{way}_{op}_s"], [r[f"{way}_{op}_rss_mb"]],
                                  "" if way == "s5cmd" else "s5cmd", [] if way == "s5cmd" else base,
                                  "zoo ≥ 0.8 × s5cmd, ≥ dvc" if way == "zoo" else "",
                                  (r[f"zoo_{op}_vs_s5cmd"] >= 0.8 and r[f"zoo_{op}_mib_s"] >= r[f"dvc_{op}_mib_s"])
                                  if judged else None, f"{r[f'{way}_{op}_mib_s']} MiB/s"))
    return out


# ---- zoo serve: the JSON API under load, downloads against nginx ------------------------------------

# The searches of the API benchmark, cycled over requests (so no one answer is repeated back to back):
# terms that match one, some, all or none of the synthetic models, with sorts, a facet and a limit.
SEARCHES = [
    "/api/models?search=wine-lin-00", "/api/models?search=lin-01&sort=accuracy&direction=desc",
    "/api/models?search=0042", "/api/models?search=synthetic&limit=20", "/api/models?search=linear&sort=checkpoints",
    "/api/models?search=tabular&task=tabular-classification", "/api/models?search=nomatch",
    "/api/models?search=9&sort=lastModified&direction=desc", "/api/models?search=lin-005&sort=nll",
    "/api/models?search=WINE&limit=1000",
]
FLOOR_PATH = "/nope"  # a 404 from Starlette's router: uvicorn, routing and the middleware, no zoo work
WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""
WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def debian_tool(command: str, package: str) -> str | None:
    """The path of ``command``, installing Debian's ``package`` with apt-get first when it is missing (as
    scripts/install.sh installs chromium: sudo only when not root); None where that is not possible."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found or not shutil.which("apt-get"):
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        return None
    # RUNLEVEL=1: invoke-rc.d starts no service, so installing nginx never opens its default site on port 80
    # of every interface (the benchmark starts its own, on 127.0.0.1 only); `env` carries it through sudo
    apt = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "RUNLEVEL=1", "apt-get"]
    print(f"  installing Debian's {package} (apt-get) …", file=sys.stderr, flush=True)
    for cmd in ([*apt, "update", "-qq"], [*apt, "install", "-y", "-qq", package]):
        if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                          check=False).returncode != 0:
            return None
    return shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")


class Served:
    """A server in a child process (its own session) on 127.0.0.1:port, answering before it is used,
    stopped (SIGTERM to its process group) at the end."""

    def __init__(self, ctx: Context, cmd: Sequence[str], port: int, probe: str, name: str) -> None:
        import http.client

        self.port, self.name = port, name
        self.log = ctx.tmp / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(list(cmd), env=ctx.env, stdout=log, stderr=log, start_new_session=True)
        started = time.perf_counter()
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", probe)
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not answer on 127.0.0.1:{port} within 90 s") from None
                time.sleep(0.05)
        self.started = time.perf_counter() - started

    @property
    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def sequential(port: int, paths: Sequence[str], count: int, status: int, method: str = "GET") -> list[float]:
    """``count`` GETs (or ``method``) one after another on one keep-alive connection, cycling over ``paths``;
    each one's seconds (request sent to body read). Raises on any other status than ``status``."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    try:
        for k in range(count):
            path = paths[k % len(paths)]
            start = time.perf_counter()
            conn.request(method, path)
            r = conn.getresponse()
            r.read()
            times.append(time.perf_counter() - start)
            if r.status != status:
                raise RuntimeError(f"{method} {path}: {r.status}, expected {status}")
    finally:
        conn.close()
    return times


def python_load(port: int, paths: Sequence[str], clients: int, seconds: float, max_requests: int) -> dict:
    """The fallback load generator where wrk is missing: ``clients`` threads, each with its own keep-alive
    connection, sending GETs until ``seconds`` have passed or ``max_requests`` were sent in all."""
    import http.client
    import threading

    lock = threading.Lock()
    sent = {"n": 0, "bad": 0}
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if sent["n"] >= max_requests:
                        break
                    k = sent["n"]
                    sent["n"] += 1
                start = time.perf_counter()
                conn.request("GET", paths[k % len(paths)])
                r = conn.getresponse()
                r.read()
                mine.append(time.perf_counter() - start)
                if not 200 <= r.status < 400:
                    with lock:
                        sent["bad"] += 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "seconds": elapsed, "non2xx": sent["bad"], "errors": 0,
            "p50": statistics.median(latencies), "p99": sorted(latencies)[int(len(latencies) * 0.99)]}


def wrk_load(ctx: Context, wrk: str, port: int, paths: Sequence[str], clients: int, seconds: float) -> dict:
    """``wrk`` with ``clients`` connections on one thread for ``seconds``, cycling over ``paths`` (Lua)."""
    script = ctx.tmp / f"wrk-{abs(hash(tuple(paths)))}.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    out = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s", "--latency", "-s",
                          str(script), f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=seconds + 60,
                         check=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    if not done:
        raise RuntimeError(f"wrk: no request count in its output:\n{out}")

    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(m.group(1)) * WRK_UNITS[m.group(2)] if m else float("nan")

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": int(done.group(1)), "seconds": float(done.group(2)) * WRK_UNITS[done.group(3)],
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": sum(map(int, errors.groups())) if errors else 0,
            "p50": latency("50"), "p99": latency("99")}


NGINX_CONF = """daemon off;
worker_processes 1;
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {root}; }}
    }}
}}
"""


def curl_get(ctx: Context, url: str, size: int, server: Served) -> tuple[float, float]:
    """One download with curl into /dev/null: (curl's total seconds, the server's peak RSS in MB, sampled
    every 10 ms while it runs). Raises unless it was a 200 of ``size`` bytes."""
    import threading

    peak = [server.rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], server.rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                              url], capture_output=True, text=True, timeout=600, check=True).stdout
    finally:
        done.set()
        watcher.join()
    code, got, seconds = out.split()
    if code != "200" or int(got) != size:
        raise RuntimeError(f"GET {url}: {code}, {got} bytes; expected 200 and {size}")
    return float(seconds), peak[0]


def bench_serve(ctx: Context) -> list[Result]:
    """``zoo serve``: ``GET /api/models?search=…`` on a zoo of 100,000 checkpoints (1,000 models × 100,
    table and evaluation records written directly, no checkpoint bytes): latency of one client against
    the server's floor (a 404 from its router) and requests/s with 32 concurrent clients (wrk, else a
    bounded Python client); then the download of a 1 GiB checkpoint against Debian's nginx serving the
    same file from 127.0.0.1 (both read by curl), and the server's memory during it. wrk and nginx are
    Debian's, installed with apt-get when missing; nginx runs from a minimal config in the temp folder
    (``daemon off``, ``sendfile on``, 127.0.0.1 only) and is stopped at the end. The peak RSS of these
    rows is the server's (zoo serve's, nginx's master and worker), sampled while the requests run."""
    return _bench_serve_api(ctx) + _bench_serve_download(ctx)


def _bench_serve_api(ctx: Context) -> list[Result]:
    models, steps = (20, 100) if ctx.quick else (1000, 100)
    n = models * steps
    root = build_pipeline_zoo(ctx, ctx.folder("serve-api") / "zoo", models, steps, files=False)
    wrk = debian_tool("wrk", "wrk")
    clients, load_s = 32, (1 if ctx.quick else 5)
    count = 100 if ctx.quick else 300  # sequential requests per repetition
    port = free_port()
    server = Served(ctx, [ZOO, "-C", str(root), "serve", "--port", str(port)], port, FLOOR_PATH, "zoo-serve-api")
    try:
        first = sequential(port, SEARCHES[:1], 1, 200)[0]  # builds the snapshot of the working tree
        first_rss = server.rss
        sequential(port, SEARCHES, 2 * len(SEARCHES), 200)  # warm-up
        lat: dict[str, list[float]] = {"floor": [], "search": [], "versions": []}
        loads: dict[str, list[dict]] = {"floor": [], "search": []}

        def latency(name: str, paths: Sequence[str], k: int, status: int) -> Callable[[int], tuple[float, float]]:
            def measure(i: int) -> tuple[float, float]:
                times = sequential(port, paths, k, status)
                lat[name] += times
                return statistics.median(times), server.rss
            return measure

        def load(name: str, paths: Sequence[str], ok: Callable[[dict], bool]) -> Callable[[int], tuple[float, float]]:
            def measure(i: int) -> tuple[float, float]:
                if wrk:
                    got = wrk_load(ctx, wrk, port, paths, clients, load_s)
                else:
                    got = python_load(port, paths, clients, load_s, 20_000)
                if got["errors"] or not ok(got):
                    raise RuntimeError(f"load on {paths[0]}: {got}")
                loads[name].append(got)
                return got["seconds"] / got["requests"] * 1000, server.rss  # seconds per 1,000 requests
            return measure

        commands = {
            "floor": latency("floor", [FLOOR_PATH], count, 404),
            "search": latency("search", SEARCHES, count, 200),
            "versions": latency("versions", ["/api/versions"], count // 10, 200),
            "floor_load": load("floor", [FLOOR_PATH], lambda g: g["non2xx"] == g["requests"]),
            "search_load": load("search", SEARCHES, lambda g: g["non2xx"] == 0),
        }
        m = side_by_side(ctx, ctx.n(5, 2), commands)
    finally:
        server.stop()

    def pct(name: str) -> str:
        times = sorted(lat[name])
        return (f"median {statistics.median(m[name][0]) * 1000:.2f} ms; {len(times):,} requests; "
                f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms, "
                f"p99 {times[int(len(times) * 0.99)] * 1000:.2f} ms")

    def rate(name: str) -> str:
        runs = loads[name]
        rps = statistics.median(g["requests"] / g["seconds"] for g in runs)
        return (f"{rps:,.0f} requests/s; latency p50 {statistics.median(g['p50'] for g in runs) * 1000:.1f} ms, "
                f"p99 {statistics.median(g['p99'] for g in runs) * 1000:.1f} ms; {sum(g['requests'] for g in runs):,} "
                f"requests in {len(runs)} runs of {load_s} s")

    tool = "wrk" if wrk else "Python threads"
    label = f"{n:,} checkpoints ({models} × {steps})"
    search = Result("serve", f"GET /api/models?search=… ({len(SEARCHES)} queries in turn), {label}, one client",
                    *m["search"], f"GET {FLOOR_PATH} (404)", m["floor"][0], "median ≤ 20 ms", note=pct("search"))
    search.met = None if ctx.quick else search.median <= 0.02
    load_ = Result("serve", f"GET /api/models?search=…, {clients} concurrent clients ({tool}): s per 1,000 requests",
                   *m["search_load"], f"GET {FLOOR_PATH}, same load", m["floor_load"][0], "≥ 500 requests/s",
                   note=rate("search"))
    load_.met = None if ctx.quick else 1000 / load_.median >= 500
    return [
        Result("serve", f"zoo serve: first GET /api/models, {label} (snapshot build)", [first], [first_rss],
               note=f"server answered {server.started:.2f} s after start"),
        Result("serve", f"GET {FLOOR_PATH} (404 from the router: the server's floor), one client", *m["floor"],
               note=pct("floor")),
        search,
        Result("serve", "GET /api/versions (git for-each-ref + cat-file per ref), one client", *m["versions"],
               f"GET {FLOOR_PATH} (404)", m["floor"][0], note=pct("versions")),
        Result("serve", f"GET {FLOOR_PATH}, {clients} concurrent clients ({tool}): s per 1,000 requests",
               *m["floor_load"], note=rate("floor")),
        load_,
    ]


def _bench_serve_download(ctx: Context, hub: bool = False) -> list[Result]:
    """The 1 GiB download against nginx: ``/files/big/1``, or with ``hub`` the Hub's ``/resolve`` URL of it."""
    size = 64 * MIB if ctx.quick else 1024 * MIB
    bench = "hub" if hub else "serve"
    root = new_zoo(ctx, ctx.folder(f"{bench}-files") / "zoo")
    register_vector_arch(root, "vector", size // 4)
    src = ctx.tmp / f"{bench}-files" / "big.safetensors"
    write_safetensors(src, size)
    run(ctx, [ZOO, "add", str(src), "--model", "big", "--step", "1", *ADD_ARGS], cwd=root)
    src.unlink()
    # the file zoo serve sends (the working tree's, else the DVC cache object): nginx serves that one
    _, _, out = run_out(ctx, [PYTHON, "-c", "import sys; from checkpoint_zoo.api import Zoo; "
                                            "print(Zoo(sys.argv[1]).verified_file('big@1'))", str(root)])
    path = Path(out.strip())
    nbytes = path.stat().st_size
    nginx = debian_tool("nginx", "nginx")
    port = free_port()
    zoo = Served(ctx, [ZOO, "-C", str(root), "serve", "--port", str(port)], port, FLOOR_PATH, f"zoo-{bench}-files")
    web = None
    zoo_path = "/zoo/big/resolve/step-1/model.safetensors" if hub else "/files/big/1"
    try:
        zoo_url = f"http://127.0.0.1:{port}{zoo_path}"

        def zoo_get(i: int) -> tuple[float, float]:
            return curl_get(ctx, zoo_url, nbytes, zoo)

        commands = {"zoo": zoo_get}
        if nginx:
            prefix = ctx.folder("serve-nginx")
            nport = free_port()
            user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the 0700 temp folder
            (prefix / "nginx.conf").write_text(NGINX_CONF.format(user=user, prefix=prefix, port=nport, root=path.parent))
            web = Served(ctx, [nginx, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                         nport, "/", "nginx")
            nginx_url = f"http://127.0.0.1:{nport}/{path.name}"
            commands = {"nginx": lambda i: curl_get(ctx, nginx_url, nbytes, web), "zoo": zoo_get}
        before = zoo.rss
        side_by_side(ctx, 1, commands)  # warm-up: page cache, the server's stamp of the file
        m = side_by_side(ctx, ctx.n(5, 2), commands)
    finally:
        zoo.stop()
        if web is not None:
            web.stop()
    label = f"{size // MIB} MiB"
    mib_s = {k: nbytes / MIB / statistics.median(v[0]) for k, v in m.items()}
    kind = "working-tree file" if root in path.parents else "DVC cache object"
    results = []
    if nginx:
        results.append(Result(bench, f"nginx (sendfile) {label} from 127.0.0.1, curl -o /dev/null", *m["nginx"],
                              note=f"{mib_s['nginx']:,.0f} MiB/s; the {kind} zoo serve sends"))
        ratio = statistics.median(m["nginx"][0]) / statistics.median(m["zoo"][0])
        download = Result(bench, f"zoo serve GET {zoo_path} {label}, curl -o /dev/null", *m["zoo"], "nginx",
                          m["nginx"][0], "throughput ≥ 0.8 × nginx", None if ctx.quick else ratio >= 0.8,
                          note=f"{mib_s['zoo']:,.0f} MiB/s: throughput {ratio:.2f} × nginx")
    else:
        download = Result(bench, f"zoo serve GET {zoo_path} {label}, curl -o /dev/null", *m["zoo"],
                          note=f"{mib_s['zoo']:,.0f} MiB/s; no nginx on this machine to compare with")
    growth = max(m["zoo"][1]) - before
    memory = Result(bench, f"zoo serve memory during the {label} downloads", *m["zoo"], target="flat: peak growth < 64 MB",
                    met=None if ctx.quick else growth < 64,
                    note=f"RSS {before:.0f} MB before, peak {max(m['zoo'][1]):.0f} MB: +{growth:.0f} MB")
    return [*results, download, memory]


def bench_hub(ctx: Context) -> list[Result]:
    """``zoo serve`` through the Hugging Face Hub's protocol, the real ``huggingface_hub`` client in this process
    (``endpoint=`` the server), against the same server's 404 floor, interleaved: a cached ``hf_hub_download``
    (one HEAD) and a raw HEAD of the weights (answered from the table: the zoo has 100,000 checkpoints and no
    bytes), and ``snapshot_download`` of steps never fetched before (revision, tree, HEAD + GET per file) of one
    file and of two (the generated config.json and README.md: the synthetic rows have no bytes), whose difference
    is the cost of a file more; then the weights' download through ``/resolve`` against nginx on the same file
    (as ``serve`` does for ``/files``)."""
    return _bench_hub_api(ctx) + _bench_serve_download(ctx, hub=True)


def _bench_hub_api(ctx: Context) -> list[Result]:
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    models, steps = (20, 100) if ctx.quick else (1000, 100)
    root = build_pipeline_zoo(ctx, ctx.folder("hub-api") / "zoo", models, steps, files=False)
    count = 50 if ctx.quick else 300  # requests (or cached downloads) per repetition
    snaps = 4 if ctx.quick else 20  # fresh snapshots per repetition
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cache, fresh_cache = ctx.folder("hub-cache"), ctx.folder("hub-snapshots")
    repos = [f"zoo/{model_name(m)}" for m in range(0, models, max(1, models // 10))]
    weights = [f"/{repo}/resolve/main/model.safetensors" for repo in repos]
    fresh = iter([(model_name(m), s * STEP_GAP) for s in range(steps) for m in range(models)])
    server = Served(ctx, [ZOO, "-C", str(root), "serve", "--port", str(port)], port, FLOOR_PATH, "zoo-serve-hub")
    try:
        started = time.perf_counter()
        for repo in repos:  # the first builds the snapshot of 100,000 rows; each a cached copy of config.json
            hf_hub_download(repo, "config.json", cache_dir=cache, endpoint=endpoint)
        first = time.perf_counter() - started
        sequential(port, weights, 2 * len(weights), 200, "HEAD")  # warm-up

        def timed(name: str, times: Callable[[], list[float]]) -> Callable[[int], tuple[float, float]]:
            def measure(i: int) -> tuple[float, float]:
                got = times()
                samples.setdefault(name, []).extend(got)
                return statistics.median(got), server.rss
            return measure

        def cached() -> list[float]:
            out = []
            for k in range(count):
                start = time.perf_counter()
                hf_hub_download(repos[k % len(repos)], "config.json", cache_dir=cache, endpoint=endpoint)
                out.append(time.perf_counter() - start)
            return out

        def snapshot(patterns: list[str]) -> Callable[[], list[float]]:
            def times() -> list[float]:
                out = []
                for _ in range(snaps):
                    model, step = next(fresh)
                    start = time.perf_counter()
                    path = snapshot_download(f"zoo/{model}", revision=f"step-{step}", cache_dir=fresh_cache,
                                             endpoint=endpoint, allow_patterns=patterns)
                    out.append(time.perf_counter() - start)
                    if len(list(Path(path).iterdir())) != len(patterns):
                        raise RuntimeError(f"snapshot_download zoo/{model}@step-{step}: {list(Path(path).iterdir())}")
                return out
            return times

        samples: dict[str, list[float]] = {}
        m = side_by_side(ctx, ctx.n(5, 2), {
            "floor": timed("floor", lambda: sequential(port, [FLOOR_PATH], count, 404)),
            "head": timed("head", lambda: sequential(port, weights, count, 200, "HEAD")),
            "cached": timed("cached", cached),
            "one": timed("one", snapshot(["config.json"])),
            "two": timed("two", snapshot(["config.json", "README.md"])),
        })
    finally:
        server.stop()
    return _hub_rows(ctx, m, samples, f"{models * steps:,} checkpoints",
                     Result("hub", f"first hf_hub_download calls ({len(repos)} repos, {models * steps:,} checkpoints: "
                                   "snapshot build)", [first], [server.rss],
                            note=f"server answered {server.started:.2f} s after start"))


def _hub_rows(ctx: Context, m: dict, samples: dict[str, list[float]], label: str, first: Result) -> list[Result]:
    """The rows of ``_bench_hub_api``'s measurements, each judged against its target outside --quick."""
    def note(name: str) -> str:
        times = sorted(samples[name])
        return (f"median {statistics.median(times) * 1000:.2f} ms; {len(times):,} samples; "
                f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms")

    floor = f"GET {FLOOR_PATH} (404)"
    cached_ = Result("hub", f"cached hf_hub_download (one HEAD, config.json), {label}", *m["cached"], floor,
                     m["floor"][0], "median ≤ 10 ms", None if ctx.quick else statistics.median(m["cached"][0]) <= 0.01,
                     note=note("cached"))
    # a file more in the same snapshot (HEAD + GET, the client's lock, cache entry and symlink): the difference of
    # the medians of fresh snapshots of two files and of one; the whole call's fixed cost is the one-file row
    extra = statistics.median(samples["two"]) - statistics.median(samples["one"])
    per_file = Result("hub", f"snapshot_download: each file more (2-file minus 1-file fresh snapshots), {label}",
                      [extra], [max(m["two"][1])], target="≤ 10 ms a file", met=None if ctx.quick else extra <= 0.01,
                      note=f"{extra * 1000:.2f} ms a file; two files: {note('two')}")
    return [
        first,
        Result("hub", f"GET {FLOOR_PATH} (404 from the router: the server's floor), one client", *m["floor"],
               note=note("floor")),
        Result("hub", f"HEAD /zoo/M/resolve/main/model.safetensors (from the table, no bytes), {label}", *m["head"],
               floor, m["floor"][0], note=note("head")),
        cached_,
        Result("hub", f"snapshot_download of a step never fetched, 1 file (revision, tree, HEAD + GET), {label}",
               *m["one"], floor, m["floor"][0], note=note("one")),
        per_file,
    ]


