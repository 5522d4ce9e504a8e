"""Stored audio through Django's storage API: the local file system (the embedded default)
or S3-compatible object storage when ``STORAGE_URL`` names a bucket.

Nothing here, and nothing that uses it, asks a storage for a path: object storage has none,
and a worker on another host could not open a web host's path anyway. What needs the bytes
reads them through the storage instead:

- byte ranges (``read_range``, ``open_range``): a span of a live recording, the part of a
  file the browser's player asks for;
- a local copy for the decoder (``decodable``): PyAV seeks about in a file, so a worker
  copies an object into its own ``AUDIO_CACHE_DIR`` and deletes the copy when the job ends,
  however it ends (and empties that folder when it starts, for a worker killed mid-job);
- a live recording's spool (``spool_path``, ``put_file``): the web process appends to a
  local file while the session streams and puts it into storage when the stream ends.

Object storage errors come out as ``OSError``: ``FileNotFoundError`` for an object that is
not there, ``StorageUnavailable`` for a store that cannot be reached or refuses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, default_storage

log = logging.getLogger(__name__)


class StorageUnavailable(OSError):  # noqa: N818 - named for what the caller sees
    """Object storage could not be reached or refused a request: worth trying again later,
    unlike a missing object."""


class _PastTheEnd(OSError):
    """A range that starts past the object's end (S3 answers 416)."""


def object_storage(storage: Storage | None = None):
    """``storage`` (the default one if None) when it is django-storages' S3 backend, else None."""
    storage = default_storage if storage is None else storage
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # pragma: no cover - the dependency is pinned
        return None
    # default_storage is a lazy object: isinstance looks through it.
    return storage if isinstance(storage, S3Storage) else None


def _key(storage, name: str) -> str:
    from storages.utils import clean_name, safe_join

    return safe_join(storage.location, clean_name(name))


@contextlib.contextmanager
def translated(name: str) -> Iterator[None]:
    """botocore's errors as the ``OSError`` every caller of storage already handles (around
    Django storage calls too: ``Storage.save`` of an upload)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error.get("Code") == "NoSuchBucket":  # a setting to put right, not a lost file
            raise StorageUnavailable(f"the bucket of STORAGE_URL does not exist ({name})") from exc
        if status == 404 or error.get("Code") in ("NoSuchKey", "NotFound", "404"):
            raise FileNotFoundError(f"{name} is not in object storage") from exc
        if status == 416 or error.get("Code") == "InvalidRange":
            raise _PastTheEnd(name) from exc
        raise StorageUnavailable(
            f"object storage refused {name}: {error.get('Code') or status} "
            f"{error.get('Message') or ''}".strip()
        ) from exc
    except (BotoCoreError, Boto3Error) as exc:  # Boto3Error: a transfer that failed
        raise StorageUnavailable(f"object storage is unreachable: {exc}") from exc


def _client(storage):
    return storage.connection.meta.client


def size(name: str, storage: Storage | None = None) -> int:
    """The stored file's size in bytes; ``FileNotFoundError`` when it is not there."""
    storage = default_storage if storage is None else storage
    s3 = object_storage(storage)
    if s3 is None:
        return storage.size(name)
    with translated(name):
        head = _client(s3).head_object(Bucket=s3.bucket_name, Key=_key(s3, name))
    return int(head["ContentLength"])


def exists(name: str, storage: Storage | None = None) -> bool:
    try:
        size(name, storage)
    except FileNotFoundError:
        return False
    return True


class Window:
    """``length`` bytes of an open file from where it stands: what a range read gives."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self.handle, self.left = handle, length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.handle.read(n) if n else b""
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()


def open_file_range(path: Path, start: int, length: int) -> Window:
    """The same reader of a local file (a live recording's spool)."""
    handle = open(path, "rb")  # noqa: SIM115 - the reader closes it
    handle.seek(start)
    return Window(handle, length)


def open_range(name: str, start: int, length: int, storage: Storage | None = None):
    """A reader (``read(n)``, ``close()``) of the bytes ``[start, start + length)`` of a
    stored file: one ranged GET on object storage, a seek on the file system."""
    storage = default_storage if storage is None else storage
    s3 = object_storage(storage)
    if s3 is None:
        handle = storage.open(name, "rb")
        handle.seek(start)
        return Window(handle, length)
    if length <= 0:
        return Window(_Empty(), 0)
    with translated(name):
        answer = _client(s3).get_object(
            Bucket=s3.bucket_name, Key=_key(s3, name), Range=f"bytes={start}-{start + length - 1}"
        )
    return _Body(answer["Body"], name)


class _Empty:
    def read(self, _n: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


class _Body:
    """An object's streamed body, with a dropped connection mid-read as ``OSError``."""

    def __init__(self, body, name: str) -> None:
        self.body, self.name = body, name

    def read(self, n: int = -1) -> bytes:
        with translated(self.name):
            return self.body.read(None if n is None or n < 0 else n)

    def close(self) -> None:
        self.body.close()


def read_range(name: str, start: int, length: int, storage: Storage | None = None) -> bytes:
    """The bytes ``[start, start + length)`` of a stored file (fewer where it ends first)."""
    if length <= 0:
        return b""
    try:
        reader = open_range(name, start, length, storage)
    except _PastTheEnd:
        return b""  # as a file read past its end
    try:
        return reader.read(length)
    finally:
        reader.close()


def reader(name: str, storage: Storage | None = None):
    """``read_at(offset, length)`` for the stored file ``name``: ranged reads, no copy."""

    def read_at(offset: int, length: int) -> bytes:
        return read_range(name, offset, length, storage)

    return read_at


def delete(name: str, storage: Storage | None = None) -> None:
    """Delete the stored file ``name`` (nothing to do when it is not there), and a live
    recording's spool on this host with it."""
    storage = default_storage if storage is None else storage
    with translated(name):
        storage.delete(name)
    if object_storage(storage) is not None:
        with contextlib.suppress(ValueError):
            spool_path(name, storage).unlink(missing_ok=True)


def put_file(name: str, path: Path, storage: Storage | None = None) -> None:
    """Store the local file ``path`` as ``name`` exactly (replacing what is there): a live
    recording's spool when its stream ends. Only for object storage, where the name must not
    be changed as ``Storage.save`` would for a name in use."""
    s3 = object_storage(storage)
    if s3 is None:
        raise ValueError("put_file is for object storage; the file system writes in place")
    with translated(name):
        _client(s3).upload_file(
            str(path),
            s3.bucket_name,
            _key(s3, name),
            ExtraArgs={"ContentType": "audio/wav"},
            Config=s3.transfer_config,
        )


def fetch_file(name: str, path: Path, storage: Storage | None = None) -> None:
    """Copy the object ``name`` to the local file ``path`` (replaced whole, or left as it
    was when the copy fails)."""
    s3 = object_storage(storage)
    if s3 is None:
        raise ValueError("fetch_file is for object storage")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with translated(name), open(partial, "wb") as handle:
            _client(s3).download_fileobj(
                s3.bucket_name, _key(s3, name), handle, Config=s3.transfer_config
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# --- the worker's local copies ----------------------------------------------------------

_cache_owner: list[str] = []


def cache_dir() -> Path:
    """This worker's folder of local copies: one per worker name (stt-gpu0, ...), so that
    the workers of one host, sharing a DATA_DIR, never empty each other's."""
    owner = _cache_owner[-1] if _cache_owner else f"pid-{os.getpid()}"
    return Path(settings.AUDIO_CACHE_DIR) / owner


def claim_cache(node_name: str) -> None:
    """At a worker's start (its Celery node name, ``stt-gpu0@host``): its cache folder, with
    whatever a killed predecessor of the same name left there deleted."""
    owner = node_name.partition("@")[0] or node_name
    _cache_owner.append("".join(c if c.isalnum() or c in "-_." else "_" for c in owner))
    folder = cache_dir()
    if folder.exists():
        left = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        if left:
            log.warning("deleted %d cached audio file(s) a previous run left in %s", left, folder)


@contextlib.contextmanager
def decodable(name: str, storage: Storage | None = None) -> Iterator[str | IO[bytes]]:
    """The stored file as something PyAV opens: on the file system an open handle (as
    always), from object storage a local copy in ``cache_dir()``, deleted on the way out
    (also when the job fails)."""
    storage = default_storage if storage is None else storage
    if object_storage(storage) is None:
        with storage.open(name, "rb") as handle:
            yield handle
        return
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{uuid.uuid4().hex}{PurePosixPath(name).suffix[:16]}"
    try:
        fetch_file(name, copy, storage)
        yield str(copy)
    finally:
        copy.unlink(missing_ok=True)


# --- live recordings ---------------------------------------------------------------------


def spool_path(name: str, storage: Storage | None = None) -> Path:
    """Where this web process writes the live recording ``name`` while its session streams:
    on the file system the stored file itself (written in place, so it plays and workers
    read it while the session runs), with object storage a file under ``LIVE_SPOOL_DIR``
    that goes into storage when the stream ends."""
    storage = default_storage if storage is None else storage
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{name!r} is not a stored file's name")
    if object_storage(storage) is None and isinstance(storage, FileSystemStorage):
        return Path(storage.location, *relative.parts)
    return Path(settings.LIVE_SPOOL_DIR, *relative.parts)
