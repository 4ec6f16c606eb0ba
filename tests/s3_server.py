"""Test helpers for the S3 remote: moto's S3 server as a real HTTP subprocess, and a loopback TCP proxy
that can be cut in the middle of a transfer.

The server is ``scripts/s3_server.py serve`` (the script a person uses by hand), started on a free port
of 127.0.0.1 with a request log, so tests count exactly which objects were fetched and how many bytes
went each way. Nothing is patched: dvc-s3, s3fs and boto3 talk HTTP to it.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SERVER_SCRIPT = PROJECT / "scripts" / "s3_server.py"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    status: int | None
    bytes_in: int
    bytes_out: int
    agent: str = ""

    @property
    def key(self) -> str:
        """The object key (without the bucket), '' for bucket-level requests."""
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def is_object_get(self) -> bool:
        return self.method == "GET" and bool(self.key)

    @property
    def is_object_put(self) -> bool:
        return self.method == "PUT" and bool(self.key)


class MotoServer:
    """``scripts/s3_server.py serve`` in a subprocess on 127.0.0.1, a free port, one bucket."""

    def __init__(self, workdir: Path, bucket: str = "zoo", auth: bool = False) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"requests-{os.getpid()}-{id(self)}.jsonl"
        cmd = [sys.executable, str(SERVER_SCRIPT), "serve", "--json", "--port", "0", "--bucket", bucket,
               "--request-log", str(self.log_path), "--exit-with-parent"]
        if auth:
            cmd.append("--auth")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.workdir / "server.err", "ab"),
                                     stdin=subprocess.DEVNULL, text=True, env=env)
        line = self._readline(60)
        self.info = json.loads(line)
        self.endpoint: str = self.info["endpoint"]
        self.port: int = self.info["port"]
        self.bucket = bucket
        self.access_key_id: str = self.info["access_key_id"]
        self.secret_access_key: str = self.info["secret_access_key"]

    def _readline(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            raise RuntimeError(f"moto server not ready in {timeout} s: {(self.workdir / 'server.err').read_text()[-2000:]}")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"moto server exited: {(self.workdir / 'server.err').read_text()[-2000:]}")
        return line

    @property
    def env(self) -> dict[str, str]:
        """Credentials (and region) for a client of this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, endpoint: str | None = None):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                            config=Config(retries={"max_attempts": 1}))

    def requests(self, until=None, timeout: float = 10.0) -> list[Request]:
        """The logged requests. The server logs a request once its answer has gone out, so a client can hold
        the answer a moment before its line lands: wait a little always, and with ``until`` (a predicate on
        the list) until it holds or ``timeout`` passes, then read once more for anything logged just after."""
        deadline = time.monotonic() + timeout
        time.sleep(0.05)
        while until is not None and not until(self._read_log()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if until is not None:
            time.sleep(0.05)
        return self._read_log()

    def _read_log(self) -> list[Request]:
        out = []
        for line in self.log_path.read_text().splitlines():
            d = json.loads(line)
            out.append(Request(d["method"], d["path"], d["query"], d["status"], d["bytes_in"], d["bytes_out"],
                               d.get("agent", "")))
        return out

    def clear_log(self) -> None:
        time.sleep(0.05)  # a request that is still being logged lands before the truncation
        self.log_path.write_text("")

    def keys(self, prefix: str = "", bucket: str | None = None) -> dict[str, int]:
        """Every object key under ``prefix`` in the bucket, with its size."""
        found = {}
        pager = self.client().get_paginator("list_objects_v2")
        for page in pager.paginate(Bucket=bucket or self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj["Size"]
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


class TcpProxy:
    """A loopback TCP proxy in front of an endpoint. ``cut_after(n, 'down'|'up')`` kills it (every
    connection reset, the port closed, so the endpoint is dead) once n bytes have gone that way;
    ``start()`` brings it back on the same port."""

    def __init__(self, upstream_port: int, port: int = 0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = port
        self.bytes = {"up": 0, "down": 0}
        self.cut_at: tuple[str, int] | None = None
        self.cut_happened = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.cut_at = None
        self.cut_happened.clear()
        self.bytes = {"up": 0, "down": 0}
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.port = ls.getsockname()[1]
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def cut_after(self, nbytes: int, direction: str = "down") -> None:
        self.bytes = {"up": 0, "down": 0}
        self.cut_at = (direction, nbytes)

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                cut = self.cut_at
                with self._lock:
                    self.bytes[direction] += len(data)
                    over = cut is not None and cut[0] == direction and self.bytes[direction] >= cut[1]
                if over:
                    keep = len(data) - (self.bytes[direction] - cut[1])
                    if keep > 0:
                        dst.sendall(data[:keep])
                    self.kill()
                    return
                dst.sendall(data)
        except OSError:
            pass
        if not self.cut_happened.is_set():
            try:
                dst.shutdown(socket.SHUT_WR)  # pass the end of stream on, as a real peer would
            except OSError:
                pass

    def kill(self) -> None:
        """The endpoint dies like a killed process: no more connections, every open one reset (RST)."""
        self.cut_happened.set()
        with self._lock:  # both pumps of a connection may cut at once: one of them closes the listener
            listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
                s.shutdown(socket.SHUT_RD)  # wakes a pump blocked in recv() without sending anything
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.kill()
