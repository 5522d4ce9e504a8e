"""Strict parsing of settings from the environment.

Every helper raises ``ImproperlyConfigured`` naming the variable, so a typo in a
deployment stops start-up with a message instead of running on a silent default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def envstr(
    name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    value = _raw(name, environ)
    return default if value is None else value


def envbool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use one of true/false, 1/0, yes/no, on/off"
    )


def envint(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    _check_range(name, number, minimum, maximum)
    return number


def envfloat(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
    _check_range(name, number, minimum, maximum)
    return number


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")


def envchoice(
    name: str, default: str, choices: Iterable[str], *, environ: Mapping[str, str] | None = None
) -> str:
    allowed = list(choices)
    value = _raw(name, environ)
    if value is None:
        return default
    if value.lower() not in allowed:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(allowed)}")
    return value.lower()


def envlist(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default)
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name}={value!r} holds no items; give a comma-separated list")
    return items


def envnetworks(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """IP addresses and networks (``10.0.0.5``, ``172.16.0.0/12``, ``::1``), comma-separated,
    each given back in its normal form (an address as a one-address network); ``none`` is the
    empty list."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    if value.lower() == "none":
        return []
    networks = []
    for item in (part.strip() for part in value.split(",")):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}={value!r}: {item!r} is not an IP address or network (10.0.0.0/8)"
            ) from None
    return networks


def envport(name: str, default: int, *, environ: Mapping[str, str] | None = None) -> int:
    """A TCP port, 1 to 65535."""
    return envint(name, default, minimum=1, maximum=65535, environ=environ)


# Host names, IPv4 and IPv6 addresses (daphne takes ``::`` or ``[::1]``); no spaces, no
# scheme, no port: those are separate variables.
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*")


def envhost(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str:
    """A host name or IP address to listen on or connect to."""
    value = _raw(name, environ)
    if value is None:
        return default
    if not _HOST.fullmatch(value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a host name or IP address")
    return value


# CUDA names a device by its index or by its UUID (``GPU-...``, ``MIG-...``).
_DEVICE = re.compile(r"\d+|(GPU|MIG)-[0-9A-Za-z/-]+")


def envdevices(
    name: str, *, empty_is_unset: bool = True, environ: Mapping[str, str] | None = None
) -> list[str] | None:
    """GPU ids as CUDA_VISIBLE_DEVICES spells them: indexes or UUIDs, comma-separated.

    None when the variable is unset; [] for ``none``, ``cpu`` or ``-1`` (CUDA's own way of
    hiding every device). CUDA ignores everything from the first ``-1`` on, and so does
    this. An empty value is unset unless ``empty_is_unset`` is False: an empty
    CUDA_VISIBLE_DEVICES hides every GPU, while an empty STT_GPUS means "not chosen".
    """
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None:
        return None
    value = raw.strip()
    if not value:
        return None if empty_is_unset else []
    if value.lower() in ("none", "cpu"):
        return []
    devices: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if item == "-1":
            break
        if not _DEVICE.fullmatch(item):
            raise ImproperlyConfigured(
                f"{name}={value!r}: {item!r} is not a GPU index or UUID; "
                "give comma-separated GPU ids (0,1), or none"
            )
        devices.append(item)
    return devices


def envcredentials(name: str, *, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """``user:password[,user2:password2]``, or None when unset.

    The error names the variable and the item's position but never echoes the value: it
    holds passwords and ends up in logs.
    """
    value = _raw(name, environ)
    if value is None:
        return None
    pairs = [item.strip() for item in value.split(",")]
    for position, pair in enumerate(pairs, start=1):
        user, colon, password = pair.partition(":")
        if not (user.strip() and colon and password):
            raise ImproperlyConfigured(
                f"{name}: item {position} of {len(pairs)} is not user:password "
                "(give user:password[,user2:password2])"
            )
    return pairs


def envurl(
    name: str, default: str, schemes: Iterable[str], *, environ: Mapping[str, str] | None = None
) -> str:
    allowed = list(schemes)
    value = _raw(name, environ) or default
    parts = urlsplit(value)
    if parts.scheme not in allowed:
        raise ImproperlyConfigured(
            f"{name}={value!r} must start with one of: {', '.join(s + '://' for s in allowed)}"
        )
    if not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r} names no host")
    try:
        parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} has an invalid port") from None
    return value


# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit at
# either end.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ADDRESSING = ("path", "virtual", "auto")


def _redacted(url: str) -> str:
    """``url`` with its password (an S3 secret key) replaced, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def parse_storage_url(name: str, url: str | None) -> dict:
    """The ``STORAGES["default"]`` entry for ``url``.

    Unset: the local file system under MEDIA_ROOT (the embedded default). Otherwise
    ``s3://[access_key:secret_key@]bucket[/prefix][?endpoint_url=...&region=...
    &addressing_style=path|virtual|auto]``: S3-compatible object storage (AWS S3, MinIO,
    Ceph, ...) through django-storages. Keys left out of the URL come from boto3's usual
    places (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role). Errors
    name the variable and never echo the secret key.
    """
    if url is None:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    shown = _redacted(url)
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ImproperlyConfigured(
            f"{name}={shown!r} must be an s3:// URL: s3://[key:secret@]bucket[/prefix]?endpoint_url=..."
        )
    bucket = parts.netloc.rpartition("@")[2]
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ImproperlyConfigured(
            f"{name}={shown!r}: {bucket!r} is not a bucket name "
            "(3-63 lowercase letters, digits, dots and hyphens)"
        )
    if (parts.username is None) != (parts.password is None) or parts.username == "":
        raise ImproperlyConfigured(
            f"{name}={shown!r}: give both the access key and the secret key "
            "(s3://key:secret@bucket, each URL-encoded) or neither"
        )
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={shown!r}: its query is not key=value&...") from None
    unknown = sorted(set(query) - {"endpoint_url", "region", "addressing_style"})
    if unknown:
        raise ImproperlyConfigured(
            f"{name}={shown!r}: unknown option(s) {', '.join(unknown)}; "
            "known: endpoint_url, region, addressing_style"
        )
    options = {key: values[-1].strip() for key, values in query.items()}
    endpoint = options.get("endpoint_url") or None
    if endpoint is not None:
        endpoint_parts = urlsplit(endpoint)
        try:
            endpoint_parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            endpoint_parts = endpoint_parts._replace(netloc="")
        if endpoint_parts.scheme not in ("http", "https") or not endpoint_parts.hostname:
            raise ImproperlyConfigured(
                f"{name}={shown!r}: endpoint_url={endpoint!r} is not an http(s)://host[:port] URL"
            )
    region = options.get("region") or None
    if region is not None and not re.fullmatch(r"[a-z0-9-]+", region):
        raise ImproperlyConfigured(f"{name}={shown!r}: region={region!r} is not a region name")
    # MinIO and Ceph are reached by path (http://minio:9000/bucket/key); AWS by host name.
    addressing = options.get("addressing_style") or ("path" if endpoint else "auto")
    if addressing not in _ADDRESSING:
        raise ImproperlyConfigured(
            f"{name}={shown!r}: addressing_style={addressing!r} is not one of: "
            + ", ".join(_ADDRESSING)
        )
    prefix = unquote(parts.path).strip("/")
    if any(piece in ("", ".", "..") for piece in prefix.split("/")) and prefix:
        raise ImproperlyConfigured(f"{name}={shown!r}: the prefix {prefix!r} is not a folder name")
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "location": prefix,
            "endpoint_url": endpoint,
            "region_name": region,
            "access_key": unquote(parts.username) if parts.username else None,
            "secret_key": unquote(parts.password) if parts.password else None,
            "addressing_style": addressing,
            # Two uploads of the same name are two objects, as on the file system.
            "file_overwrite": False,
            # Objects stay private: the web process checks who may hear a recording.
            "default_acl": None,
            "querystring_auth": True,
            # Nothing waits minutes on an unreachable store, and a passing failure is tried
            # again before a job fails for it.
            "client_config": Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 4, "mode": "standard"},
                s3={"addressing_style": addressing},
            ),
        },
    }


def parse_database_url(name: str, url: str) -> dict:
    """Turn ``postgresql://user:pass@host:port/db?sslmode=...`` into a Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"{name}={url!r} must be a postgresql:// URL")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ImproperlyConfigured(f"{name}={url!r} names no database")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={url!r} has an invalid port") from None
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = parts.hostname or options.pop("host", "")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": options,
    }
