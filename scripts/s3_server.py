#!/usr/bin/env python3
"""A local S3 endpoint for trying and testing the zoo's S3 remote: moto's S3 server on 127.0.0.1.

moto is an EMULATOR of the S3 API (the one DVC's own tests use); it stands in for AWS S3, MinIO or
Ceph RGW here because none of those installs from the package registries this project may reach.
It keeps every object in memory (spilling large ones to temp files): stopping it loses the bucket.

    python scripts/s3_server.py start            # background: wait until it answers, create the bucket,
                                                 # print `export ...` lines (eval them) and exit
    python scripts/s3_server.py stop             # stop the background server cleanly
    python scripts/s3_server.py status
    python scripts/s3_server.py serve            # foreground until Ctrl-C (what `start` runs)

Options: --port (0 = a free port, the default), --bucket (default `zoo`), --auth (check credentials:
an IAM user and access key are created and printed; any other key is refused), --request-log FILE
(one JSON line per request: method, key, status, bytes in and out; the tests count transfers with
it), --json (print the ready record as JSON instead of shell lines), --state-dir DIR (where `start`
keeps the pid and the ready record; default ~/.cache/checkpoint-zoo/s3-server).

Only loopback addresses are served. moto, Flask and flask-cors are installed with the pins of
constraints.txt if this interpreter lacks them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from checkpoint_zoo.utils.temps import pid_alive

PROJECT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# moto accepts any key unless auth is on; these are the conventional placeholder credentials
DEFAULT_KEY, DEFAULT_SECRET = "testing", "testing"
SERVER_REQUIREMENTS = ("moto[s3]", "Flask", "flask-cors")
# with --auth: the requests that may run before credentials are checked (the setup below makes 5)
SETUP_ACTIONS = 5


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "checkpoint-zoo" / "s3-server"


def ensure_installed() -> None:
    """Install moto's server dependencies (pinned by constraints.txt) into this interpreter if missing."""
    try:
        import flask  # noqa: F401
        import flask_cors  # noqa: F401
        import moto  # noqa: F401
        import yaml  # noqa: F401  (moto[s3])
        return
    except ImportError:
        pass
    print("s3_server: installing moto's S3 server (moto[s3], Flask, flask-cors) ...", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    constraints = PROJECT / "constraints.txt"
    if constraints.is_file():
        cmd += ["-c", str(constraints)]
    subprocess.run([*cmd, *SERVER_REQUIREMENTS], check=True)


class RequestLog:
    """WSGI middleware: one JSON line per request (method, bucket/key, query, status, bytes in/out, seconds,
    the client's User-Agent)."""

    def __init__(self, app, path: Path) -> None:
        self.app = app
        self.path = Path(path)
        self.lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def __call__(self, environ, start_response):
        started = time.monotonic()
        record = {"method": environ.get("REQUEST_METHOD"), "path": environ.get("PATH_INFO", ""),
                  "query": environ.get("QUERY_STRING", ""), "bytes_in": int(environ.get("CONTENT_LENGTH") or 0),
                  "agent": environ.get("HTTP_USER_AGENT", "")[:200]}
        status_box = {}

        def _start(status, headers, exc_info=None):
            status_box["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        sent = 0
        try:
            for chunk in self.app(environ, _start):
                sent += len(chunk)
                yield chunk
        finally:
            record.update(status=status_box.get("status"), bytes_out=sent,
                          seconds=round(time.monotonic() - started, 4))
            line = json.dumps(record) + "\n"
            with self.lock, open(self.path, "a") as fh:
                fh.write(line)


def _loopback(host: str) -> str:
    try:
        addr = socket.gethostbyname(host)
    except OSError:
        addr = ""
    if not addr.startswith("127."):
        raise SystemExit(f"s3_server: --host {host!r} is not a loopback address; only 127.0.0.0/8 is served")
    return host


def _client(endpoint: str, key: str, secret: str, service: str = "s3"):
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30))


def _wait_answering(endpoint: str, timeout: float = 30) -> None:
    """Until the endpoint answers an HTTP request (any status)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"s3_server: {endpoint} did not answer within {timeout:.0f} s") from None
            time.sleep(0.05)


def _setup(endpoint: str, bucket: str, auth: bool) -> tuple[str, str]:
    """Create the bucket (and with auth, an IAM user allowed s3:* and its access key); return the credentials."""
    key, secret = DEFAULT_KEY, DEFAULT_SECRET
    if auth:
        iam = _client(endpoint, key, secret, "iam")
        iam.create_user(UserName="zoo")
        iam.put_user_policy(UserName="zoo", PolicyName="s3-all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        made = iam.create_access_key(UserName="zoo")["AccessKey"]
        key, secret = made["AccessKeyId"], made["SecretAccessKey"]
    s3 = _client(endpoint, key, secret)
    if bucket:
        s3.create_bucket(Bucket=bucket)
    s3.list_buckets()  # proves the credentials work (and, with auth, uses up the no-auth allowance)
    if not auth:
        s3.list_buckets()  # the same number of requests either way
    return key, secret


def serve(args) -> int:
    host = _loopback(args.host)
    if args.auth:
        # read by moto at import: the first SETUP_ACTIONS requests create the user; then keys are checked
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
    ensure_installed()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    if not args.verbose:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    app = DomainDispatcherApplication(create_backend_app)
    if args.request_log:
        app = RequestLog(app, Path(args.request_log))
    server = make_server(host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    endpoint = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_parent:  # a test run that dies leaves no server behind
        parent = os.getppid()

        def watch() -> None:
            while not stop.wait(0.5):
                if os.getppid() != parent:
                    stop.set()

        threading.Thread(target=watch, daemon=True).start()
    try:
        _wait_answering(endpoint)
        key, secret = _setup(endpoint, args.bucket, args.auth)
    except BaseException:
        server.shutdown()
        raise
    info = {"endpoint": endpoint, "host": host, "port": port, "bucket": args.bucket, "region": REGION,
            "access_key_id": key, "secret_access_key": secret, "auth": bool(args.auth), "pid": os.getpid(),
            "request_log": str(args.request_log or "")}
    if args.ready_file:
        tmp = Path(args.ready_file).with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(args.ready_file)
    print(json.dumps(info) if args.json else shell_lines(info), flush=True)
    if not args.json:
        print("# serving until Ctrl-C (moto: an S3 emulator, data in memory only)", file=sys.stderr, flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    if args.ready_file:
        Path(args.ready_file).unlink(missing_ok=True)
    return 0


def shell_lines(info: dict) -> str:
    return "\n".join([
        f"# moto S3 server (an emulator standing in for AWS S3, MinIO or Ceph) at {info['endpoint']}, "
        f"bucket {info['bucket']!r}{', credentials checked' if info['auth'] else ''}",
        f"export AWS_ACCESS_KEY_ID={info['access_key_id']}",
        f"export AWS_SECRET_ACCESS_KEY={info['secret_access_key']}",
        f"export AWS_DEFAULT_REGION={info['region']}",
        f"export S3_ENDPOINT_URL={info['endpoint']}",
        f"# next: zoo remote add s3 s3://{info['bucket']}/checkpoints --endpoint {info['endpoint']}",
    ])



def start(args) -> int:
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    ready = state / "server.json"
    if ready.exists():
        info = json.loads(ready.read_text())
        if pid_alive(info["pid"]):
            print(json.dumps(info) if args.json else shell_lines(info))
            print(f"# already running (pid {info['pid']}); `python {sys.argv[0]} stop` stops it", file=sys.stderr)
            return 0
        ready.unlink()
    _loopback(args.host)
    ensure_installed()
    cmd = [sys.executable, str(Path(__file__).resolve()), "serve", "--host", args.host, "--port", str(args.port),
           "--bucket", args.bucket, "--ready-file", str(ready), "--json"]
    if args.auth:
        cmd.append("--auth")
    if args.request_log:
        cmd += ["--request-log", str(Path(args.request_log).resolve())]
    log = open(state / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            sys.stderr.write((state / "server.log").read_text(errors="replace")[-2000:])
            raise SystemExit(f"s3_server: the server exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit("s3_server: the server was not ready within 60 s")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    print(json.dumps(info) if args.json else shell_lines(info))
    return 0


def stop(args) -> int:
    ready = Path(args.state_dir) / "server.json"
    if not ready.exists():
        print("s3_server: no background server recorded; nothing to stop", file=sys.stderr)
        return 0
    pid = json.loads(ready.read_text())["pid"]
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while pid_alive(pid) and time.monotonic() < deadline:
            try:  # reap it if it is our child (it is not when `start` ran in another shell)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    ready.unlink(missing_ok=True)
    print(f"s3_server: stopped (pid {pid}); its data is gone")
    return 0


def status(args) -> int:
    ready = Path(args.state_dir) / "server.json"
    if ready.exists() and pid_alive(json.loads(ready.read_text())["pid"]):
        info = json.loads(ready.read_text())
        print(json.dumps(info) if args.json else shell_lines(info))
        return 0
    print("s3_server: not running", file=sys.stderr)
    return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="moto is an emulator standing in for AWS S3, MinIO or Ceph RGW.")
    p.add_argument("action", nargs="?", default="serve", choices=("serve", "start", "stop", "status"))
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--bucket", default="zoo", help="bucket to create (default zoo; '' for none)")
    p.add_argument("--auth", action="store_true", help="check credentials: create an IAM user and key, refuse others")
    p.add_argument("--request-log", metavar="FILE", help="append one JSON line per request to FILE")
    p.add_argument("--json", action="store_true", help="print the ready record as one JSON line")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request on stderr")
    p.add_argument("--ready-file", metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it exits")
    p.add_argument("--state-dir", default=str(_default_state_dir()), help="where `start` keeps pid and endpoint")
    args = p.parse_args(argv)
    return {"serve": serve, "start": start, "stop": stop, "status": status}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
