"""Checkpoint file formats: content sniffing, safetensors header facts, hashing.

Nothing here ever unpickles. Formats are told apart by their first bytes, never by the extension.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import FormatError, UnsafeFormatError

_CHUNK = 8 * 1024 * 1024
# A safetensors header is JSON; anything bigger than this is hostile, not a model.
MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class FileFacts:
    """What the table records about a file, all computed from its bytes."""

    size_bytes: int
    sha256: str
    num_params: int
    dtype: str  # ';'-joined sorted set of tensor dtypes, e.g. "F32" or "F32;I64"
    metadata: dict[str, str]


def sniff(path: Path) -> str:
    """Name the format by content: safetensors, pickle, torch-zip, torchscript, or unknown."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= MAX_HEADER_BYTES and head[8:9] == b"{":
            return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "unknown"
        if any(n.endswith("/constants.pkl") or n.endswith("/code/") or "/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "torch-zip"
    return "unknown"


def _refuse(path: Path, kind: str) -> None:
    if kind in {"pickle", "torch-zip"}:
        raise UnsafeFormatError(
            f"{path}: pickle-based checkpoint refused (loading it could run code); "
            "convert it with `zoo add --convert` or save it with safetensors.torch.save_file"
        )
    if kind == "torchscript":
        raise UnsafeFormatError(
            f"{path}: TorchScript archive refused (it carries code); export the state_dict with "
            "safetensors.torch.save_file instead"
        )
    raise FormatError(
        f"{path}: not a safetensors file (unrecognised content); save it with safetensors.torch.save_file"
    )


def read_header(path: Path) -> tuple[int, str, dict[str, str]]:
    """(num_params, dtype, metadata) of a safetensors file, checked by the safetensors library."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    kind = sniff(path)
    if kind != "safetensors":
        _refuse(path, kind)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            num_params = 0
            dtypes: set[str] = set()
            for key in f.keys():
                sl = f.get_slice(key)
                n = 1
                for d in sl.get_shape():
                    n *= int(d)
                num_params += n
                dtypes.add(str(sl.get_dtype()))
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FormatError(
            f"{path}: corrupt or truncated safetensors file ({first}); re-save it with safetensors"
        ) from None
    if not dtypes:
        raise FormatError(f"{path}: safetensors file holds no tensors; save the model's state_dict")
    return num_params, ";".join(sorted(dtypes)), metadata


def inspect_file(path: Path, sha256: str | None = None) -> FileFacts:
    """Validate a safetensors file and compute its table facts (hashing it unless ``sha256`` is given)."""
    num_params, dtype, metadata = read_header(path)
    return FileFacts(
        size_bytes=Path(path).stat().st_size,
        sha256=sha256 or sha256_file(path),
        num_params=num_params,
        dtype=dtype,
        metadata=metadata,
    )


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in large chunks."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` atomically (temp file, fsync, rename) and return the sha256 of what was written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(src, "rb", buffering=0) as fi, open(tmp, "wb", buffering=0) as fo:
            while chunk := fi.read(_CHUNK):
                h.update(chunk)
                fo.write(chunk)
            os.fsync(fo.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h.hexdigest()
