"""Where finished clips and subtitles go, and the signed links that hand them out.

One fsspec code path serves every backend: a local directory (the embedded default) or
``s3://bucket/prefix`` through s3fs (AWS, MinIO, moto, R2... via ``endpoint_url``). The only
backend-specific parts are the ones that must differ:

- atomic writes: a reader never sees a half-written object at a key. Locally we write a temp
  file beside the target and rename it (atomic on one filesystem); on S3 we stream a multipart
  upload that becomes visible only when completed, and abort it on failure.
- links: S3 hands out presigned GET URLs; local files are served by the API at
  ``{public_base_url}/files/{key}`` behind an expiring HMAC-SHA256 signature that
  ``verify_link`` checks.

Keys are relative POSIX paths ("jobs/<id>/clip.mp4"); anything that could escape the root is
refused with ``invalid_request``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import fsspec
from fsspec.utils import get_protocol

from clipmaker.errors import BAD_SIGNATURE, INVALID_REQUEST, LINK_EXPIRED, ClipError

if TYPE_CHECKING:
    from clipmaker.settings import Settings

PART_SIZE = 8 * 2**20  # S3 multipart part size: above S3's 5 MiB minimum, small enough to stream
COPY_CHUNK = 2**20  # local copy chunk: bounded memory for multi-GB clips
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer than 7 days


@dataclass(frozen=True)
class S3Credentials:
    """Explicit S3 credentials; unset fields fall back to botocore's usual lookup."""

    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


def sign_key(secret: bytes, key: str, expires: int, tenant: str | None = None) -> str:
    """Hex HMAC-SHA256 of ``key``, its expiry time (unix seconds) and, for a link scoped to a
    tenant, the tenant. The scoped message starts with ``tenant:``, which no storage key does,
    so an unscoped signature can never pass for a scoped one or the reverse."""
    message = f"{key}\n{int(expires)}"
    if tenant is not None:
        message = f"tenant:{tenant}\n{message}"
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def verify_link(
    secret: bytes,
    key: str,
    expires: str | int,
    sig: str,
    *,
    tenant: str | None = None,
    now: float | None = None,
) -> None:
    """Accept a local link or raise ``ClipError`` (403): ``bad_signature`` or ``link_expired``.

    The signature is checked first, so a forged expiry reads as a bad signature, not as expired.
    """
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        raise ClipError(BAD_SIGNATURE, "malformed link", status_code=403) from None
    expected = sign_key(secret, key, expires_at, tenant)
    # compare_digest on str only accepts ASCII; a non-ASCII signature is simply wrong.
    if not sig.isascii() or not hmac.compare_digest(expected, sig.lower()):
        raise ClipError(BAD_SIGNATURE, "the link's signature does not match", status_code=403)
    if (time.time() if now is None else now) > expires_at:
        raise ClipError(LINK_EXPIRED, "the link has expired", status_code=403)


def _check_key(key: str) -> str:
    """A key is a relative POSIX path without '.', '..' or empty parts."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ClipError(INVALID_REQUEST, f"invalid storage key: {key!r}")
    return key


class ResultStore:
    """One fsspec code path for local dirs and s3://bucket/prefix."""

    def __init__(
        self,
        url: str,
        *,
        public_base_url: str,
        secret: bytes,
        endpoint_url: str | None = None,
        credentials: S3Credentials | None = None,
    ) -> None:
        self.url = url
        self.public_base_url = public_base_url.rstrip("/")
        self._secret = secret
        protocol = get_protocol(url)
        if protocol in ("file", "local"):
            self.fs: fsspec.AbstractFileSystem = fsspec.filesystem("file", auto_mkdir=True)
            root = Path(url.removeprefix("file://")).expanduser().resolve()
            root.mkdir(parents=True, exist_ok=True)
            self.root = root.as_posix()
        elif protocol in ("s3", "s3a"):
            creds = credentials or S3Credentials()
            self.fs = fsspec.filesystem(
                "s3",
                endpoint_url=endpoint_url,
                # None falls back to botocore's own chain (environment, profile, instance role)
                key=creds.access_key_id,
                secret=creds.secret_access_key,
                client_kwargs={"region_name": creds.region} if creds.region else {},
                # Several processes write the same bucket: never trust a cached listing.
                use_listings_cache=False,
                skip_instance_cache=True,
                config_kwargs={
                    # SigV4 presigned URLs: SigV2 (botocore's default for presigning) is
                    # refused by newer AWS regions and by several S3-compatible servers.
                    "signature_version": "s3v4",
                    # Fail a readiness probe in seconds, not minutes, when the endpoint is down.
                    "connect_timeout": 5,
                    "retries": {"max_attempts": 3},
                },
            )
            self.root = self.fs._strip_protocol(url).rstrip("/")
        else:
            raise ValueError(f"unsupported storage URL {url!r}: use a directory or s3://")

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultStore:
        return cls(
            settings.resolved_storage_url,
            public_base_url=settings.resolved_public_base_url,
            secret=settings.resolved_signing_secret,
            endpoint_url=settings.s3_endpoint_url,
            credentials=S3Credentials(
                access_key_id=settings.s3_access_key_id,
                secret_access_key=(
                    settings.s3_secret_access_key.get_secret_value()
                    if settings.s3_secret_access_key
                    else None
                ),
                region=settings.s3_region,
            ),
        )

    @property
    def is_local(self) -> bool:
        return "file" in self.fs.protocol

    def _path(self, key: str) -> str:
        return f"{self.root}/{_check_key(key)}"

    # --- writing ------------------------------------------------------------------------------

    @contextmanager
    def _atomic_writer(self, key: str, content_type: str) -> Iterator[IO[bytes]]:
        """A file to write ``key`` through; the object appears whole on success, not at all
        on failure."""
        path = self._path(key)
        if self.is_local:
            parent, name = path.rsplit("/", 1)
            tmp = f"{parent}/.{name}.{secrets.token_hex(4)}.part"  # same dir: rename is atomic
            try:
                with self.fs.open(tmp, "wb") as f:
                    yield f
                self.fs.mv(tmp, path)
            except BaseException:
                with suppress(FileNotFoundError):
                    self.fs.rm_file(tmp)
                raise
        else:
            # autocommit=False: parts go up as the buffer fills, the object appears only at
            # commit (CompleteMultipartUpload); discard() aborts the upload.
            f = self.fs.open(
                path, "wb", block_size=PART_SIZE, autocommit=False, ContentType=content_type
            )
            try:
                yield f
                f.close()
                f.commit()
            except BaseException:
                with suppress(Exception):
                    f.discard()
                f.closed = True  # or garbage collection would flush the abandoned buffer
                raise

    def put_file(self, local: Path, key: str, *, content_type: str) -> int:
        """Store the file at ``local`` under ``key``; returns the bytes stored."""
        with open(local, "rb") as src, self._atomic_writer(key, content_type) as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
            return dst.tell()

    def put_bytes(self, data: bytes, key: str, *, content_type: str) -> int:
        if not self.is_local:
            # One PutObject (atomic) instead of a three-request multipart upload.
            self.fs.pipe_file(self._path(key), data, ContentType=content_type)
            return len(data)
        with self._atomic_writer(key, content_type) as dst:
            dst.write(data)
        return len(data)

    # --- reading ------------------------------------------------------------------------------

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; ``FileNotFoundError`` when there is none."""
        return self.fs.cat_file(self._path(key))

    def size(self, key: str) -> int | None:
        try:
            info = self.fs.info(self._path(key))
        except FileNotFoundError:
            return None
        return None if info.get("type") == "directory" else int(info["size"])

    def list_keys(self, prefix: str) -> list[str]:
        """Keys of every object under ``prefix``, sorted (for operators and tests)."""
        path = self._path(prefix.rstrip("/"))
        try:
            found = self.fs.find(path)
        except FileNotFoundError:
            return []
        root = self.root.rstrip("/") + "/"
        return sorted(p.split(root, 1)[1] for p in found if root in p)

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix`` (a key or a "directory" of keys)."""
        path = self._path(prefix.rstrip("/"))  # an empty prefix is refused: it is everything
        with suppress(FileNotFoundError):
            self.fs.rm(path, recursive=True)

    # --- links --------------------------------------------------------------------------------

    def signed_url(self, key: str, ttl_s: int, *, tenant: str | None = None) -> SignedUrl:
        """A link to ``key``; a local one can be scoped to a tenant (the API then refuses it
        to any other tenant's key). S3 links are presigned and unscoped."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        path = self._path(key)
        if self.is_local:
            expires = int(time.time()) + int(ttl_s)
            sig = sign_key(self._secret, key, expires, tenant)
            scope = "" if tenant is None else f"&tenant={quote(tenant, safe='')}"
            url = f"{self.public_base_url}/files/{quote(key)}?expires={expires}{scope}&sig={sig}"
            return SignedUrl(url=url, expires_at=datetime.fromtimestamp(expires, UTC))
        ttl_s = min(int(ttl_s), MAX_PRESIGN_S)
        now = datetime.now(UTC).replace(microsecond=0)  # SigV4 signs whole seconds
        url = self.fs.url(path, expires=ttl_s)
        return SignedUrl(url=url, expires_at=now + timedelta(seconds=ttl_s))

    def local_path(self, key: str) -> Path:
        """Where ``key`` lives on disk (local backend only), for the API to serve it."""
        if not self.is_local:
            raise RuntimeError("local_path is only available for a local results directory")
        root = Path(self.root)
        path = (root / PurePosixPath(_check_key(key))).resolve()
        if not path.is_relative_to(root):  # a symlink inside the root pointing out of it
            raise ClipError(INVALID_REQUEST, f"invalid storage key: {key!r}")
        return path

    def check(self) -> None:
        """Raise if the backend cannot be used (root or bucket missing, endpoint down)."""
        if self.is_local:
            root = Path(self.root)
            if not root.is_dir():
                raise FileNotFoundError(f"results directory {root} does not exist")
            probe = root / f".ready.{secrets.token_hex(4)}"
            probe.write_bytes(b"")  # raises when the directory is not writable
            probe.unlink()
            return
        bucket = self.root.split("/", 1)[0]
        self.fs.call_s3("head_bucket", Bucket=bucket)
