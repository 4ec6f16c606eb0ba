"""Every exception the zoo raises on purpose.

Each subclass also inherits the builtin it resembles, so callers can catch either. Messages are one
line that names the offending thing and says how to fix it; the CLI prints them as they are.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base of all known zoo errors: the CLI prints the message and exits 1."""


class UsageError(ZooError, ValueError):
    """A command was given arguments that cannot work together (CLI exit 2)."""


class InvalidValueError(ZooError, ValueError):
    """A value (name, arch, license, tag ...) breaks a rule of the table (CLI exit 1)."""


class RefError(ZooError, ValueError):
    """A checkpoint reference is malformed."""


class CheckpointNotFoundError(ZooError, KeyError):
    """A reference names a model or step the table does not hold."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class NotAZooError(ZooError, FileNotFoundError):
    """The folder (or revision) holds no zoo."""


class TableInvalidError(ZooError, ValueError):
    """The metadata table fails its schema; ``problems`` lists every failure, one line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])

    def __str__(self) -> str:
        head = self.args[0] if self.args else "invalid table"
        return "\n".join([head, *("  " + p for p in self.problems)])


class FormatError(ZooError, ValueError):
    """A checkpoint file is not an acceptable, intact safetensors file."""


class UnsafeFormatError(FormatError):
    """A checkpoint file is pickle-based or TorchScript: refused, never loaded."""


class ConversionError(FormatError):
    """``zoo add --convert`` could not turn a pickle-based checkpoint into safetensors (the file needs a
    global that is not allowed, holds no tensors, or the converter failed or timed out); nothing was added."""


class UnsafeFileError(ZooError, ValueError):
    """A file the zoo reads besides checkpoints (a DVC pointer, dvc.yaml, a YAML config) is hostile or
    malformed: YAML anchors/aliases, too big, or a symlink; refused before anything parses it further."""


class DiskFullError(ZooError, OSError):
    """The disk (or a size limit) ran out while writing; temp files were removed, nothing half-written kept."""


class DuplicateCheckpointError(ZooError, FileExistsError):
    """(model, step) exists already with other bytes."""


class IntegrityError(ZooError, OSError):
    """A file's bytes do not match the sha256 recorded in the table."""


class MissingFileError(ZooError, FileNotFoundError):
    """A checkpoint file is not present locally (not pulled yet)."""


class StorageError(ZooError, OSError):
    """DVC or a remote failed; the message names the remote and the cause."""


class RemoteUnreachableError(StorageError, ConnectionError):
    """The remote's endpoint cannot be reached, or the connection dropped during a transfer (nothing
    partial is kept; a re-run transfers only what is missing)."""


class RemoteAuthError(StorageError, PermissionError):
    """The remote refused the credentials, or none were found."""


class RemoteBucketError(StorageError, FileNotFoundError):
    """The remote's bucket (or folder) does not exist."""


class NotPushedError(StorageError, FileNotFoundError):
    """The remote is reachable but does not hold the checkpoint: it has not been pushed there yet."""


class RemoteConfigError(ZooError, ValueError):
    """A remote name, URL or option is unknown or malformed."""


class UnsafePathError(ZooError, ValueError):
    """A path would leave the zoo (traversal, absolute path, symlink out)."""


class ArchitectureError(ZooError, LookupError):
    """An architecture is not registered, cannot be built, or a checkpoint does not fit it."""


class RegistryError(ZooError, ValueError):
    """A file under conf/ (architecture, task, dataset) is missing, malformed or names something unknown."""


class UnsafeTargetError(RegistryError):
    """A ``_target_`` in conf/ points outside the allowed import roots (or at code that loads or runs files)."""


class UntrustedCodeError(ZooError, PermissionError):
    """A zoo opened from a URL or revision wants to run its own code folder without explicit trust."""


class SecretError(ZooError, ValueError):
    """A credential was about to be written into a committed file."""
