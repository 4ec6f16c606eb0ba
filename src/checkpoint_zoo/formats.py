"""Checkpoint file formats: content sniffing, safetensors header facts, hashing, conversion.

Nothing here ever unpickles. Formats are told apart by their first bytes, never by the extension.
Pickle-based files are converted (``zoo add --convert``) only in a separate, fresh, short-lived
interpreter (``checkpoint_zoo._convert``) that does ``torch.load(weights_only=True)`` and nothing else.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import struct
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import ConversionError, FormatError, InvalidValueError, UnsafeFileError, UnsafeFormatError
from .utils.files import atomic_output, sha256_file

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
        return sniff_open(f)


def sniff_open(f: BinaryIO) -> str:
    """``sniff`` of a file already opened for reading (binary, seekable), read from its start."""
    f.seek(0)
    head = f.read(16)
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= MAX_HEADER_BYTES and head[8:9] == b"{":
            return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head[:4] == b"PK\x03\x04":
        try:
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "unknown"
        if any(n.endswith("/environ.pkl") or n.endswith("/code/") or "/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "torch-zip"
        return "unknown"
    f.seek(0)
    if _looks_like_text_pickle(f.read(64 * 1024)):
        return "pickle"
    return "unknown"


# Opcodes a protocol 0/1 pickle can start with (protocol 2+ starts with PROTO, b"\x80").
_PICKLE_FIRST = frozenset(b"(]})cIJKLMNFGSTUVXdlt0")


def _looks_like_text_pickle(data: bytes) -> bool:
    """True when the first bytes (up to 64 KiB) parse as a run of pickle opcodes (protocols 0 and 1 have no magic).

    Only ``pickletools.genops`` reads them: it decodes opcodes and never builds or calls anything."""
    import pickletools

    if not data or data[0] not in _PICKLE_FIRST:
        return False
    ops = 0
    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            ops += 1
            if op.name == "STOP":
                return ops >= 2
            if ops >= 8:
                return True
    except Exception:  # not (or no longer) a pickle: decide on what parsed
        return ops >= 4 and len(data) == 64 * 1024
    return False


def _unknown_reason(path: Path) -> str:
    """Why a file that is not recognised is not safetensors, as precisely as its first bytes allow."""
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    with open(path, "rb") as f:
        head = f.read(8 + 64)
    if len(head) < 9:
        return f"{size} bytes is too short for a safetensors file"
    (n,) = struct.unpack("<Q", head[:8])
    body = head[8:].lstrip(b" \t\r\n")
    if body[:1] == b"{" and head[8:9] != b"{":
        return "its header does not start with '{' (safetensors headers must)"
    if head[8:9] == b"{" and n > MAX_HEADER_BYTES:
        return f"it declares a {n}-byte header, more than the {MAX_HEADER_BYTES}-byte limit"
    if head[8:9] == b"{" and n == 0:
        return "it declares an empty header"
    return "unrecognised content"


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
        f"{path}: not a safetensors file ({_unknown_reason(path)}); save it with safetensors.torch.save_file"
    )


def sniff_safetensors(path: Path) -> None:
    """Refuse, with the reason and the way out, a file that is not safetensors by its first bytes."""
    kind = sniff(Path(path))
    if kind != "safetensors":
        _refuse(Path(path), kind)


def read_header(path: Path) -> tuple[int, str, dict[str, str]]:
    """(num_params, dtype, metadata) of a safetensors file, checked by the safetensors library."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    sniff_safetensors(path)
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
    from .catalog.rules import DTYPES

    unknown = sorted(dtypes - set(DTYPES))
    if unknown:
        raise FormatError(f"{path}: holds tensors of dtype {', '.join(unknown)}, which the zoo cannot load "
                          f"(it takes {', '.join(DTYPES)}); convert them (e.g. to F32 or BF16) before adding")
    return num_params, ";".join(sorted(dtypes)), metadata


def tensor_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every tensor's (shape, dtype) from a safetensors header alone: no tensor byte is read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if not 0 < n <= MAX_HEADER_BYTES:
                raise ValueError(f"header length {n}")
            header = json.loads(f.read(n))
        return {k: (tuple(int(d) for d in v["shape"]), str(v["dtype"]))
                for k, v in header.items() if k != "__metadata__"}
    except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
        raise FormatError(f"{path}: unreadable safetensors header ({e}); re-save it with safetensors") from None


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


def _write_all(f, data: bytes) -> None:
    """Write every byte through an unbuffered file: a short write (disk full, RLIMIT_FSIZE) is retried,
    so it ends in the OSError that says why instead of a silently truncated copy."""
    view = memoryview(data)
    while view:
        n = f.write(view)
        if not n:
            raise OSError(28, "No space left on device (nothing written)", str(getattr(f, "name", "")))
        view = view[n:]


def copy_hashed(src: Path, dst: Path, fsync: bool = True, expect: Identity | None = None) -> str:
    """Copy ``src`` to ``dst`` atomically (temp file, fsync, rename) and return the sha256 of what was written.

    ``src`` is opened once and the copy reads that descriptor. With ``expect`` (or when ``folder_members``
    checked ``src``), it is opened without following a symlink and must still be the file that was checked
    (same device, inode and size): a file swapped for a symlink or for another file between the check and the
    copy is refused, so what lands in the zoo is what was checked. ``fsync=False`` leaves the flush to the
    caller (a batch syncs once, not once per file)."""
    expect = expect or _checked_identity(src)
    fd = _open_checked(src, expect)
    h = hashlib.sha256()
    with open(fd, "rb", buffering=0) as fi, atomic_output(dst, fsync, buffering=0) as fo:
        while chunk := fi.read(_CHUNK):
            h.update(chunk)
            _write_all(fo, chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Identity:
    """What a check saw of a regular file: the copy must read the same one."""

    dev: int
    ino: int
    size: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size)


# Files ``folder_members`` checked, by absolute path: ``copy_hashed`` holds their copy to what was checked.
_CHECKED: dict[str, Identity] = {}
_CHECKED_LOCK = threading.Lock()


def _checked_identity(path: Path) -> Identity | None:
    with _CHECKED_LOCK:
        return _CHECKED.pop(os.path.abspath(path), None)


def _open_checked(path: Path, expect: Identity | None = None, follow: bool = True) -> int:
    """A read-only descriptor of ``path``, a regular file (a FIFO is refused, never waited on); with ``expect``
    or ``follow=False``, opened without following a symlink; with ``expect``, refused unless it is the file that
    was checked."""
    follow = follow and expect is None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError:
        if not follow and os.path.islink(path):
            raise UnsafeFileError(f"{path}: is a symlink (it became one after the folder was checked?); nothing was "
                                  "copied: a checkpoint folder holds its own files, add it again once nothing changes "
                                  "it") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{path}: is not a regular file (any more); nothing was copied")
        if expect is not None and Identity.of(st) != expect:
            raise UnsafeFileError(f"{path}: is not the file that was checked (it was replaced or changed size while "
                                  "being added); nothing was copied, add it again once nothing changes it")
    except BaseException:
        os.close(fd)
        raise
    return fd


# ---- conversion of pickle-based checkpoints (zoo add --convert) --------------------------------------

_GLOBAL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
# What --allow-global may admit, beyond torch's own weights_only allowlist: data types only. The
# unpickler calls an allowed global with arguments the file chooses, so each entry is a type whose
# construction and state-setting run no code of the file's choosing (no callables, no imports, no I/O).
# An allowlist, not a denylist: whatever is not here (yaml.unsafe_load, logging.config.dictConfig, ...)
# is refused, however harmless its module looks.
ALLOWED_GLOBALS = frozenset({
    "argparse.Namespace",
    "collections.Counter", "collections.OrderedDict", "collections.defaultdict", "collections.deque",
    "datetime.date", "datetime.datetime", "datetime.time", "datetime.timedelta", "datetime.timezone",
    "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
    "builtins.frozenset", "builtins.slice", "builtins.range",
    "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath", "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "numpy.ndarray", "numpy.dtype", "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    *(f"numpy.dtypes.{t}DType" for t in ("Bool", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16",
                                          "UInt32", "UInt64", "Float16", "Float32", "Float64", "LongDouble",
                                          "Complex64", "Complex128", "Bytes", "Str")),
    "lightning.fabric.utilities.data.AttributeDict", "lightning_fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
})


def canonical_global(name: str) -> str:
    """The Python 3 name of a global as a pickle spells it: ``exec`` -> ``builtins.exec``, protocol-2
    spellings such as ``commands.Popen`` -> ``subprocess.Popen`` (what unpickling would really call)."""
    import _compat_pickle

    if "." not in name:
        return f"builtins.{name}"
    module, _, attr = name.rpartition(".")
    if (module, attr) in _compat_pickle.NAME_MAPPING:
        module, attr = _compat_pickle.NAME_MAPPING[(module, attr)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{attr}"


def allowed_global(name: str) -> bool:
    """True when --allow-global may admit ``name``: it is on ``ALLOWED_GLOBALS`` in its pickled and
    in its Python 3 spelling (a protocol-2 alias cannot smuggle in another function)."""
    return name in ALLOWED_GLOBALS and canonical_global(name) in ALLOWED_GLOBALS


def allow_global_problem(name: str) -> str | None:
    """Why ``--allow-global NAME`` is not acceptable, or None."""
    if not isinstance(name, str) or not _GLOBAL_RE.fullmatch(name):
        return f"--allow-global {name!r}: write module.Name, e.g. argparse.Namespace"
    if not allowed_global(name):
        return (f"--allow-global {name!r}: not one of the data types the zoo allows (the zoo never allows a "
                "global that could run code when unpickled; `zoo add --help` lists the allowed ones); load the "
                "file with code you trust and save its state dict with safetensors instead")
    return None


@dataclass(frozen=True)
class Conversion:
    """What ``convert_to_safetensors`` did, for the row's ``source`` and the command's output."""

    source_name: str
    source_kind: str                 # pickle, torch-zip
    source_sha256: str
    tensors: int
    taken_from: str                  # "" when the file was the state dict itself, else its key
    dropped: tuple[str, ...]         # other top-level entries that were left out
    allowed_globals: tuple[str, ...]
    torch_version: str
    state: bool = False              # a training state (optimizer, scheduler, RNG, step) was kept beside it

    def describe(self) -> str:
        """One line for the table's ``source`` column (no control characters, no formula prefix)."""
        from .catalog.rules import CONTROL_CHARS_RE

        name = CONTROL_CHARS_RE.sub("?", self.source_name)
        text = (f"converted from {name} ({self.source_kind}, sha256 {self.source_sha256}) by zoo add --convert: "
                f"torch {self.torch_version} torch.load(weights_only=True)")
        if self.taken_from:
            text += f", tensors taken from key {CONTROL_CHARS_RE.sub('?', self.taken_from)!r}"
        text += f", allow-global: {', '.join(self.allowed_globals) if self.allowed_globals else 'none'}"
        if self.state:
            text += ", training state kept"
        return text


def _converter_command(src: Path, dst: Path, allow_globals: tuple[str, ...], state_dst: Path | None = None) -> list[str]:
    # -I: a fresh, isolated interpreter (no PYTHON* variables, no user site, no cwd on sys.path), with
    # only this package's own folder put first on sys.path.
    package_parent = str(Path(__file__).resolve().parent.parent)
    boot = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            "from checkpoint_zoo._convert import main; sys.exit(main(sys.argv[1:]))")
    cmd = [sys.executable, "-I", "-c", boot, str(src), str(dst)]
    for g in allow_globals:
        cmd += ["--allow-global", g]
    if state_dst is not None:
        cmd += ["--state-out", str(state_dst)]
    return cmd


def convert_to_safetensors(src: Path, dst: Path, *, allow_globals=(), timeout: float = 600.0,
                           state_dst: Path | None = None) -> Conversion:
    """Convert a pickle-based checkpoint to safetensors at ``dst`` in a separate, fresh interpreter.

    The child does ``torch.load(src, weights_only=True)`` (never anything weaker: it also runs with
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` and without ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), widened
    only by ``allow_globals``, writes the state dict with ``safetensors.torch.save_file`` and exits;
    it is killed after ``timeout`` seconds. With ``state_dst``, a training state the checkpoint holds (a
    PyTorch Lightning checkpoint, a transformers Trainer folder) is written there as a zoo training-state
    file (``Conversion.state``). This process never unpickles anything. Raises
    ConversionError (``dst`` removed) when the child refuses or fails.
    """
    src, dst = Path(src), Path(dst)
    allow_globals = tuple(allow_globals)
    for g in allow_globals:
        problem = allow_global_problem(g)
        if problem:
            raise InvalidValueError(problem)
    kind = "trainer-folder" if src.is_dir() else sniff(src)
    if kind == "torchscript":
        _refuse(src, kind)
    if kind not in ("pickle", "torch-zip", "trainer-folder"):
        raise ConversionError(f"{src}: not a pickle-based checkpoint that --convert could read "
                              f"({_unknown_reason(src)}); give a torch.save file or a safetensors file")
    source_sha256 = _folder_sha256(src) if src.is_dir() else sha256_file(src)
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    env["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            proc = subprocess.run(
                _converter_command(src.resolve(), dst.resolve(), allow_globals,
                                   None if state_dst is None else Path(state_dst).resolve()), cwd=dst.parent, env=env,
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise ConversionError(f"{src}: conversion did not finish within {timeout:g} s and was stopped; "
                                  "nothing was added (raise ZOO_CONVERT_TIMEOUT for very large checkpoints)") from None
        result = None
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                try:
                    result = json.loads(line)
                except ValueError:
                    result = None
                break
        if proc.returncode != 0 or not result or not result.get("ok"):
            if result and result.get("error"):
                raise ConversionError(f"{src}: {result['error']}; nothing was added")
            if proc.returncode < 0:
                why = f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
            else:
                last = [l for l in proc.stderr.strip().splitlines() if l.strip()]
                why = f"exit {proc.returncode}: {last[-1][:300] if last else 'no message'}"
            raise ConversionError(f"{src}: the converter failed ({why}); nothing was added")
        if not dst.is_file():
            raise ConversionError(f"{src}: the converter reported success but wrote nothing; nothing was added")
    except BaseException:
        dst.unlink(missing_ok=True)
        if state_dst is not None:
            Path(state_dst).unlink(missing_ok=True)
        raise
    return Conversion(src.name, kind, source_sha256, int(result["tensors"]), str(result.get("taken_from") or ""),
                      tuple(result.get("dropped") or ()), allow_globals, str(result.get("torch") or "?"),
                      bool(result.get("state")))


def _folder_sha256(folder: Path) -> str:
    """One sha256 over a checkpoint folder's regular files (names and bytes, sorted by name)."""
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.is_symlink():
            h.update(p.name.encode() + b"\0" + sha256_file(p).encode() + b"\0")
    return h.hexdigest()


# ---- checkpoints of several files (a folder, as save_pretrained writes it) ------------------------------

# Weights saved with pickle (torch.save, save_pretrained(safe_serialization=False)) under their usual names.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def folder_members(folder: Path) -> list[str]:
    """The files of a checkpoint folder by their path inside it (``config.json``, ``1_Pooling/config.json``),
    sorted; refused with the reason unless every entry is a regular file or a folder (no symlinks or special
    files) with a plain name, at most 4 levels deep, no two names differ only by case, there is at least one
    safetensors weights file at the top, no file is pickle-based (by its name or its content), and the folder
    fits the table (``rules.files_limit_problem``). Each file is opened once, without following a link, and
    what was seen of it is remembered so that ``copy_hashed`` copies exactly that file."""
    from .catalog.rules import files_limit_problem

    folder = Path(folder)
    members = _walk_folder(folder)
    members.sort()
    _refuse_case_collisions(folder, members)
    problem = files_limit_problem(members)
    if problem:
        raise InvalidValueError(f"{folder}: {problem}")
    pickles = [m for m in members if Path(m).suffix in _PICKLE_SUFFIXES]
    if pickles:
        raise UnsafeFormatError(f"{folder}: holds pickle-based file(s) {', '.join(pickles[:3])} (loading them could "
                                "run code); save the weights with safetensors (save_pretrained does by default) and "
                                "leave training files such as training_args.bin out of the folder (a transformers "
                                "Trainer checkpoint folder: add it with --convert)")
    weights = [m for m in members if "/" not in m and m.endswith(".safetensors")]
    if not weights:
        raise FormatError(f"{folder}: no .safetensors weights file at the top of the folder; save the model with "
                          "save_pretrained (safetensors) or add a .safetensors file")
    identities = {m: _sniff_member(folder, m, m in weights) for m in members}
    with _CHECKED_LOCK:
        _CHECKED.update({os.path.abspath(folder / m): ident for m, ident in identities.items()})
    return members


def _walk_folder(folder: Path) -> list[str]:
    """Every regular file under ``folder`` (paths inside it), refusing links, special files, hidden folders,
    names the table cannot hold, and more than ``rules.MAX_FOLDER_FILES`` files."""
    from .catalog.rules import FOLDER_FILE_PATTERN, FOLDER_FILE_RE, MAX_FOLDER_FILES

    members: list[str] = []
    pending = [folder]
    while pending:
        for entry in sorted(pending.pop().iterdir(), key=lambda p: p.name):
            rel = entry.relative_to(folder).as_posix()
            if entry.is_symlink():
                raise InvalidValueError(f"{entry}: is a symlink; a checkpoint folder holds its own files (copy the "
                                        "file it points to into the folder)")
            if not FOLDER_FILE_RE.fullmatch(rel + ("/x" if entry.is_dir() else "")):
                raise InvalidValueError(f"{entry}: a checkpoint folder's files must match {FOLDER_FILE_PATTERN} "
                                        "(plain names, at most 4 levels deep); rename or remove it")
            if entry.is_dir():
                if entry.name.startswith("."):  # .git, .dvc …: what git and DVC treat as their own
                    raise InvalidValueError(f"{entry}: a hidden folder in a checkpoint folder; remove it")
                pending.append(entry)
            elif entry.is_file():
                members.append(rel)
            else:
                raise InvalidValueError(f"{entry}: is not a regular file; a checkpoint folder holds regular files only")
            if len(members) > MAX_FOLDER_FILES:
                raise InvalidValueError(f"{folder}: more than {MAX_FOLDER_FILES} files; a checkpoint folder holds at "
                                        "most that many (save larger shards)")
    return members


def _refuse_case_collisions(folder: Path, members: list[str]) -> None:
    """Refuse two paths that differ only by case: on a case-insensitive clone (macOS, Windows) they are one file."""
    seen: dict[str, str] = {}
    for m in members:
        parts = m.split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            other = seen.setdefault(path.casefold(), path)
            if other != path:
                raise InvalidValueError(f"{folder}: {other!r} and {path!r} differ only by case (one file on a "
                                        "case-insensitive file system); rename or remove one of them")


def _sniff_member(folder: Path, member: str, weights: bool) -> Identity:
    """Open a folder's file once without following a link, refuse it when its content is a pickle (whatever its
    name) or, for a weights file, not safetensors; what was seen of it."""
    path = folder / member
    try:
        fd = _open_checked(path, follow=False)
    except OSError as e:
        raise InvalidValueError(f"{path}: cannot read it ({e.strerror}); a checkpoint folder holds readable regular "
                                "files") from None
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        kind = sniff_open(f)
    if kind in {"pickle", "torch-zip", "torchscript"} or (weights and kind != "safetensors"):
        _refuse(path, kind)
    return Identity.of(st)


def weight_files(path: Path) -> list[Path]:
    """The safetensors files holding a checkpoint's tensors: the file itself, or a folder's ``*.safetensors``."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix == ".safetensors" and p.is_file())


def weight_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every tensor's (shape, dtype) from the headers of a checkpoint's file or of its folder's shards."""
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    for w in weight_files(path):
        mine = tensor_shapes(w)
        twice = sorted(set(mine) & set(shapes))
        if twice:
            raise FormatError(f"{w}: tensor {twice[0]!r} is also in another shard of {path}; each tensor must be "
                              "stored once")
        shapes.update(mine)
    return shapes


def load_weights_file(path: Path) -> dict:
    """A checkpoint's tensors (``torch.Tensor`` by name) from its safetensors file or its folder's shards."""
    from safetensors.torch import load_file

    tensors: dict = {}
    for w in weight_files(path):
        tensors.update(load_file(str(w)))
    return tensors


def inspect_folder(folder: Path, digests: dict[str, str]) -> FileFacts:
    """The table facts of a checked checkpoint folder whose files' sha256s are ``digests`` (name -> sha256):
    total size, the manifest's sha256, parameters and dtypes over every weights file."""
    from .catalog.rules import folder_digest

    num_params, dtypes, metadata = 0, set(), {}
    for w in weight_files(folder):
        n, dtype, meta = read_header(w)
        num_params += n
        dtypes.update(dtype.split(";"))
        metadata.update(meta)
    size = sum((Path(folder) / name).stat().st_size for name in digests)
    return FileFacts(size_bytes=size, sha256=folder_digest(digests), num_params=num_params,
                     dtype=";".join(sorted(dtypes)), metadata=metadata)
