"""``zoo gc`` on an S3 remote also collects abandoned transfers: the multipart uploads a killed ``zoo push`` left
under the remote's ``files/md5/`` (their parts stay stored until aborted) and this clone's old transfer journals.

Against a real HTTP S3 endpoint: moto's server (``scripts/s3_server.py``), nothing patched. moto reports
every upload as started on 2010-11-10, so an upload younger than the grace period cannot be made here: the
uploads kept are the one a live journal names and the one outside the remote's prefix.
"""

from __future__ import annotations

import json
import os
import time

from conftest import PROJECT, git, run_zoo
from s3_server import MotoServer

GRACE = 2.0  # seconds: the grace period of these collections


def uploads(s3: MotoServer) -> set[tuple[str, str]]:
    pages = s3.client().get_paginator("list_multipart_uploads").paginate(Bucket="zoo")
    return {(u["Key"], u["UploadId"]) for page in pages for u in page.get("Uploads", [])}


def test_gc_aborts_abandoned_uploads_and_drops_old_journals(tmp_path, s3, monkeypatch):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "zoo"
    init(root, remote_url=str(tmp_path / "local-remote"), registries_from=PROJECT)
    assert run_zoo("remote", "add", "s3", "s3://zoo/gc", "--endpoint", s3.endpoint, "--default", cwd=root).code == 0
    git("add", "-A", cwd=root)
    git("commit", "-qm", "S3 remote", cwd=root)
    client = s3.client()
    base = "gc/files/md5"
    orphan, named, elsewhere = ((key, client.create_multipart_upload(Bucket="zoo", Key=key)["UploadId"]) for key in (
        f"{base}/ab/cdef0123456789abcdef0123456789", f"{base}/12/3456789abcdef0123456789abcdef0",
        "gc-elsewhere/files/md5/ab/cdef0123456789abcdef0123456789"))
    time.sleep(GRACE + 0.5)  # every upload is now older than the grace period
    state = root / ".dvc" / "tmp" / "zoo" / "transfers"
    state.mkdir(parents=True)
    live = state / "push-123456789abcdef0123456789abcdef0.json"  # a push in progress names its upload
    live.write_text(json.dumps({"bucket": "zoo", "key": named[0], "upload_id": named[1], "parts": {}}))
    os.utime(live, (time.time() + 3600, time.time() + 3600))  # written "now", whatever gc's own start-up takes
    old = state / "push-abcdef0123456789abcdef0123456789.json"  # a killed push never re-run: no protection
    old.write_text(json.dumps({"bucket": "zoo", "key": orphan[0], "upload_id": orphan[1], "parts": {}}))
    partial = state / "pull-00112233445566778899aabbccddeeff.part"  # a partial download without its journal
    partial.write_bytes(b"half")
    week_ago = time.time() - 7 * 86400
    for path in (old, partial):
        os.utime(path, (week_ago, week_ago))
    before = uploads(s3)
    assert {orphan, named, elsewhere} <= before

    with Zoo(root) as zoo:
        report = zoo.gc(dry_run=True, grace_days=GRACE / 86400)
    assert report.aborted == [orphan]
    assert sorted(report.journals) == sorted([old.name, partial.name])
    assert uploads(s3) == before and old.exists() and partial.exists() and live.exists()  # a dry run changes nothing
    shown = run_zoo("gc", "--dry-run", "--grace-days", str(GRACE / 86400), cwd=root)
    assert shown.code == 0, shown.err
    assert f"would abort the unfinished upload {orphan[1][:16]}… of {orphan[0]}" in shown.out
    assert f"would drop the abandoned transfer journal {old.name}" in shown.out and partial.name in shown.out
    assert named[0] not in shown.out and "1 upload(s) to abort, 2 journal(s) to drop" in shown.out
    assert uploads(s3) == before and old.exists() and partial.exists()

    with Zoo(root) as zoo:
        report = zoo.gc(grace_days=GRACE / 86400)
    assert report.aborted == [orphan]
    left = uploads(s3)
    assert orphan not in left and named in left and elsewhere in left
    assert live.exists() and not old.exists() and not partial.exists()

    with Zoo(root) as zoo:  # nothing is left to collect
        report = zoo.gc(grace_days=GRACE / 86400)
    assert report.aborted == [] and report.journals == [] and named in uploads(s3)
