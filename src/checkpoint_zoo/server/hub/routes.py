"""The ASGI layer answering the Hub's shapes before the app's own routes (it parses the raw path: Starlette
decodes ``%2F`` before routing, which would split ``exp%2Ffoo`` revisions). Every 4xx carries
``X-Error-Code``; ``/resolve`` answers carry ``ETag`` (the sha256), ``Content-Length`` and ``X-Repo-Commit``,
never a compression or a Xet header."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from ...errors import CheckpointNotFoundError, IntegrityError, MissingFileError, ZooError
from ..tokens import SCOPE_KEY, allows
from . import names
from .files import HubFile, Served
from .redirect import StorageRedirects
from .state import READER, HubError, HubState

TREE_PAGE = 1000
LIST_PAGE = 1000


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    import orjson

    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _error(e: HubError) -> Response:
    headers = {"X-Error-Code": e.code, "X-Error-Message": str(e)[:200].encode("ascii", "replace").decode()}
    if e.commit:
        headers["X-Repo-Commit"] = e.commit
    return _json({"error": str(e)}, e.status, headers)


# ``/api/models/{model}/history`` and ``…/card`` have the shape of Hub info for ``{namespace}/history``: for a
# model named as the namespace, only a Hub client (User-Agent ``hf_hub/``) is answered as the Hub
OWN_MODEL_ROUTES = ("history", "card")


class HubRoutes:
    """ASGI middleware: the Hub's read protocol for the requests whose raw path has one of its shapes, the
    wrapped app for every other request (and for ``/api/models`` unless a Hub client asks)."""

    def __init__(self, app, server, namespace: str = "zoo", redirects: StorageRedirects | None = None) -> None:
        self.app = app
        self.state = HubState(server, namespace)
        self.redirects = redirects

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        asked = names.parse(raw.decode("latin-1").split("?", 1)[0])
        if asked is None or (asked.kind == "list" and not _from_hub_client(scope)) \
                or (asked.kind not in ("resolve", "list") and asked.namespace != self.state.namespace) \
                or (asked.kind == "info" and asked.model in OWN_MODEL_ROUTES and not _from_hub_client(scope)):
            # the app's own routes (and any it gains); its router's 404 for an unknown /api path gets a code
            path = scope["path"]
            plain = "RepoNotFound" if asked is not None else "EntryNotFound" if path.startswith("/api/") else None
            await self.app(scope, receive, _with_error_code(send, plain) if plain else send)
            return
        request = StarletteRequest(scope, receive)
        reader = READER.set(scope.get(SCOPE_KEY))
        try:
            if asked.model and not allows(scope, asked.model):  # answered as a model that does not exist
                raise HubError(404, "RepoNotFound", f"repository {asked.namespace[:40]}/{asked.model[:96]} not found")
            if asked.kind == "resolve":
                response = await self.resolve(asked, request)
            else:
                response = await run_in_threadpool(self.api, asked, request)
        except HubError as e:
            response = _error(e)
        except ZooError as e:
            response = _error(HubError(500, "ServerError", str(e).splitlines()[0][:300]))
        finally:
            READER.reset(reader)
        await response(scope, receive, _with_error_code(send, "BadRequest"))

    # ---- /resolve --------------------------------------------------------------------------------------

    async def resolve(self, asked: names.Request, request: StarletteRequest) -> Response:
        served = await run_in_threadpool(self.state.resolve, asked.namespace, asked.model, asked.rev)
        f = served.files.get(asked.path)
        if f is None:
            raise HubError(404, "EntryNotFound", f"{asked.path[:200]!r} is not a file of {served.ref}; its files: "
                           f"{', '.join(served.files)}", served.commit)
        headers = {"ETag": f'"{f.sha256}"', "X-Repo-Commit": served.commit, "Accept-Ranges": "bytes",
                   "Cache-Control": "no-cache" if asked.rev != served.commit else "public, max-age=31536000"}
        if f.data is not None:
            return _bytes(f.data, request, headers)
        if request.method == "HEAD":  # all a HEAD needs is the size: read from the table, or once per file
            size = self.state.known_size(f)
            if size is None and self.redirects is not None:  # the object's size, not the bytes
                found = await run_in_threadpool(self._presigned, served, f)
                size = found[1] if found is not None else None
            if size is None:
                size = (await self._local(served, f)).stat().st_size
                self.state.remember_size(f, size)
            return Response(status_code=200, media_type="application/octet-stream",
                            headers={**headers, "Content-Length": str(size)})
        if self.redirects is not None:
            moved = await run_in_threadpool(self._redirect, served, f)
            if moved is not None:
                return moved
        path = await self._local(served, f)
        from ..app import _Download

        return _Download(path, media_type="application/octet-stream", filename=f.name.rsplit("/", 1)[-1],
                         headers=headers)

    def _redirect(self, served: Served, f: HubFile) -> Response | None:
        """302 to a presigned URL of the file's object on S3 (``X-Linked-*`` say what the client gets there),
        or None when this file cannot be redirected."""
        found = self._presigned(served, f)
        if found is None:
            return None
        url, size = found
        return Response(status_code=302, headers={
            "Location": url, "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(size),
            "ETag": f'"{f.sha256}"', "X-Repo-Commit": served.commit, "Cache-Control": "no-store"})

    def _presigned(self, served: Served, f: HubFile) -> tuple[str, int] | None:
        """(presigned URL, size) of ``f``'s object on S3, or None (then it is served directly)."""
        assert self.redirects is not None
        rev = self.state.server.default_rev if served.git_rev is None else served.git_rev
        try:
            path = self.state.table_path(served, f)
        except (HubError, KeyError):  # the table moved on since the commit id was handed out
            return None
        found = self.redirects.url(self.state.server.zoo(rev), path, self.state.known_size(f))
        if found is not None:
            self.state.remember_size(f, found[1])
        return found

    async def _local(self, served: Served, f: HubFile):
        """The verified local file of ``f``, storage errors as Hub errors."""
        try:
            return await run_in_threadpool(self.state.local_file, served, f)
        except (MissingFileError, CheckpointNotFoundError) as e:
            raise HubError(404, "EntryNotFound", str(e).splitlines()[0][:300], served.commit) from None
        except IntegrityError as e:
            raise HubError(502, "IntegrityError", str(e).splitlines()[0][:300]) from None
        except ZooError as e:
            raise HubError(503, "StorageUnavailable", str(e).splitlines()[0][:300]) from None

    # ---- /api ------------------------------------------------------------------------------------------

    def api(self, asked: names.Request, request: StarletteRequest) -> Response:
        if asked.kind == "list":
            return self.list_models(request)
        if asked.kind == "unknown":
            raise HubError(404, "EntryNotFound", f"{request.url.path[:200]}: not an endpoint of this server")
        if asked.kind == "refs":
            return _json(self.refs(asked))
        served = self.state.resolve(asked.namespace, asked.model, asked.rev)
        if asked.kind == "tree":
            return self.tree(served, asked, request)
        return _json(self.info(served, blobs=request.query_params.get("blobs", "").lower() in ("1", "true")))

    def repo_id(self, model: str) -> str:
        return f"{self.state.namespace}/{model}"

    def info(self, served: Served, blobs: bool = False) -> dict[str, Any]:
        """The Hub's ModelInfo of one served checkpoint (``siblings``, with sizes and sha256 on ``?blobs=``)."""
        siblings = []
        for f in served.files.values():
            sibling: dict[str, Any] = {"rfilename": f.name}
            if blobs:
                size = self.state.size_of(served, f)
                sibling.update(size=size, blobId=_oid(f), lfs={"sha256": f.sha256, "size": size, "pointerSize": 134})
            siblings.append(sibling)
        card = served.card_data
        counts = {"safetensors": {"parameters": served.parameters, "total": sum(served.parameters.values())}} \
            if served.parameters else {}
        return {**counts, "_id": served.commit[:24], "id": self.repo_id(served.model), "modelId": self.repo_id(served.model),
                "author": self.state.namespace, "sha": served.commit, "lastModified": served.last_modified,
                "createdAt": served.last_modified, "private": False, "disabled": False, "gated": False,
                "downloads": 0, "likes": 0, "tags": list(card.get("tags") or []),
                "pipeline_tag": card.get("pipeline_tag"), "library_name": served.library, "cardData": card,
                "siblings": siblings, "spaces": []}

    def tree(self, served: Served, asked: names.Request, request: StarletteRequest) -> Response:
        """``/tree/{rev}[/{dir}]``: files with ``lfs.oid`` = the ETag; directories unless ``recursive``."""
        recursive = request.query_params.get("recursive", "").lower() in ("1", "true")
        prefix = asked.path + "/" if asked.path else ""
        entries: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for f in served.files.values():
            if not f.name.startswith(prefix):
                continue
            rest = f.name[len(prefix):]
            if "/" in rest:
                parts = rest.split("/")
                for depth in range(1, len(parts) if recursive else 2):
                    dirs.add(prefix + "/".join(parts[:depth]))
                if not recursive:
                    continue
            size = self.state.size_of(served, f)
            entries.append({"type": "file", "oid": _oid(f), "size": size, "path": f.name,
                            "lfs": {"oid": f.sha256, "size": size, "pointerSize": 134}})
        if asked.path and not entries and not dirs:
            raise HubError(404, "EntryNotFound", f"no folder {asked.path[:200]!r} in {served.ref}", served.commit)
        entries += [{"type": "directory", "oid": _oid_text(served.commit + d), "size": 0, "path": d}
                    for d in sorted(dirs)]
        start = _cursor(request)
        page = entries[start:start + TREE_PAGE]
        headers = {"X-Repo-Commit": served.commit}
        if start + TREE_PAGE < len(entries):
            headers["Link"] = _next(request, start + TREE_PAGE, "cursor")
        return _json(page, headers=headers)

    def refs(self, asked: names.Request) -> dict[str, Any]:
        """``main`` and the zoo's git branches and tags holding the model, each with its commit id."""
        self.state.model_of(asked.namespace, asked.model)
        main = self.state.resolve(asked.namespace, asked.model, "main")
        branches = [{"name": "main", "ref": "refs/heads/main", "targetCommit": main.commit}]
        tags: list[dict[str, str]] = []
        try:
            versions = self.state.server.versions()
        except ZooError:
            versions = []
        for v in versions[:100]:
            name, kind = v.get("name") or v.get("ref") or "", v.get("kind") or v.get("type") or "branch"
            if not name or name == "main":
                continue
            try:
                served = self.state.resolve(asked.namespace, asked.model, name)
            except (HubError, ZooError):  # a revision this code cannot read is not listed
                continue
            item = {"name": name, "ref": f"refs/{'tags' if kind == 'tag' else 'heads'}/{name}",
                    "targetCommit": served.commit}
            (tags if kind == "tag" else branches).append(item)
        return {"branches": branches, "tags": tags, "converts": []}

    def list_models(self, request: StarletteRequest) -> Response:
        """``/api/models?search=&author=`` for Hub clients: the models as ``{ns}/{model}``, paged by ``Link``."""
        snap = self.state.snapshot(None)
        q = request.query_params
        search = (q.get("search") or "").lower()
        author = q.get("author")
        if author not in (None, "", self.state.namespace):
            return _json([])
        found = [v for v in snap.models.values() if allows(request.scope, v.id)
                 and (not search or search in v.search_text or search in self.repo_id(v.id))]
        limit = _number(q.get("limit"), LIST_PAGE)
        start = _cursor(request)
        page = found[start:start + min(limit, LIST_PAGE)]
        headers = {"X-Total-Count": str(len(found))}
        if start + len(page) < len(found):  # ?limit= is the page size, as on the Hub
            headers["Link"] = _next(request, start + len(page), "cursor")
        out = [{"_id": v.id, "id": self.repo_id(v.id), "modelId": self.repo_id(v.id), "author": self.state.namespace,
                "private": False, "downloads": 0, "likes": 0, "tags": list(v.facets["tag"]),
                "pipeline_tag": v.summary["task"], "lastModified": _hub_date(v.summary["lastModified"]),
                "createdAt": _hub_date(v.summary["lastModified"])} for v in page]
        return _json(out, headers=headers)


def _with_error_code(send, code: str):
    """``send`` that puts ``X-Error-Code: code`` on a 4xx answered without one and without a JSON body: a
    range Starlette refuses, the router's plain 404 for a path no route has (the zoo's own JSON answers pass
    unchanged)."""
    async def sending(message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            headers = list(message.get("headers") or [])
            json_body = any(k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in headers)
            if not json_body and not any(k.lower() == b"x-error-code" for k, _ in headers):
                message = {**message, "headers": [*headers, (b"x-error-code", code.encode())]}
        await send(message)

    return sending


def _from_hub_client(scope) -> bool:
    """Whether ``/api/models`` comes from a Hub client (its User-Agent names ``hf_hub/``): they get
    ``{ns}/{model}`` ids, everyone else the zoo's own list."""
    for key, value in scope.get("headers") or ():
        if key == b"user-agent":
            return b"hf_hub/" in value
    return False


def _bytes(data: bytes, request: StarletteRequest, headers: dict[str, str]) -> Response:
    """Generated bytes, with ``Range: bytes=N-[M]`` answered 206."""
    rng = request.headers.get("range", "")
    if rng.startswith("bytes=") and "," not in rng:
        first, _, last = rng[6:].partition("-")
        try:
            start = int(first) if first else max(0, len(data) - int(last))
            end = int(last) if first and last else len(data) - 1
        except ValueError:
            start, end = -1, -1
        if not 0 <= start <= end or start >= len(data):
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}",
                                                      "X-Error-Code": "RangeNotSatisfiable"})
        end = min(end, len(data) - 1)
        return Response(data[start:end + 1], status_code=206, media_type="application/octet-stream",
                        headers={**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})
    return Response(data, media_type="application/octet-stream", headers=headers)


def _oid(f: HubFile) -> str:
    return _oid_text(f.sha256)


def _oid_text(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _number(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) <= 10**6 else default


def _cursor(request: StarletteRequest) -> int:
    return _number(request.query_params.get("cursor"), 0)


def _next(request: StarletteRequest, start: int, key: str) -> str:
    params = [(k, v) for k, v in parse_qs(request.url.query, keep_blank_values=True).items() if k != key]
    query = urlencode([(k, x) for k, vs in params for x in vs] + [(key, str(start))])
    path = (request.scope.get("raw_path") or b"").decode("latin-1").split("?")[0]
    return f'<{request.url.scheme}://{request.url.netloc}{path}?{query}>; rel="next"'


def _hub_date(text: str) -> str:
    text = (text or "1970-01-01T00:00:00Z").replace("Z", "")
    return (text if "." in text else text + ".000") + "Z"
