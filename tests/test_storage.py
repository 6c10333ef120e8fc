"""ResultStore on a local directory and on S3 (moto's server over HTTP), and local link signing."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import httpx
import pytest

from clipmaker.errors import ClipError
from clipmaker.settings import Settings
from clipmaker.storage import ResultStore, SignedUrl, sign_key, verify_link

SECRET = b"test-secret"


@pytest.fixture
def local_store(tmp_path: Path) -> ResultStore:
    return ResultStore(
        str(tmp_path / "results"), public_base_url="http://api.test:8000/", secret=SECRET
    )


@pytest.fixture
def s3_store(s3_endpoint: str, s3_bucket: str) -> ResultStore:
    return ResultStore(
        f"s3://{s3_bucket}/results",
        public_base_url="http://api.test",
        secret=SECRET,
        endpoint_url=s3_endpoint,
    )


def link_parts(signed: SignedUrl) -> tuple[str, str, str]:
    """(key, expires, sig) back out of a local link, as the API's route would parse them."""
    parts = urlsplit(signed.url)
    query = parse_qs(parts.query)
    key = unquote(parts.path.removeprefix("/files/"))
    return key, query["expires"][0], query["sig"][0]


# --- local backend ------------------------------------------------------------------------------


def test_local_round_trip(local_store: ResultStore, tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(os.urandom(3 * 2**20 + 17))  # more than one copy chunk

    assert local_store.is_local
    assert local_store.put_file(src, "jobs/j1/clip.mp4", content_type="video/mp4") == (
        src.stat().st_size
    )
    assert local_store.put_bytes(b"1\n", "jobs/j1/clip.srt", content_type="text/plain") == 2

    assert local_store.read_bytes("jobs/j1/clip.mp4") == src.read_bytes()
    assert local_store.size("jobs/j1/clip.mp4") == src.stat().st_size
    assert local_store.size("jobs/j1/missing.mp4") is None
    assert local_store.local_path("jobs/j1/clip.srt").read_bytes() == b"1\n"
    # No temp files left beside the results.
    assert sorted(p.name for p in local_store.local_path("jobs/j1").iterdir()) == [
        "clip.mp4",
        "clip.srt",
    ]
    local_store.check()


def test_local_overwrite_is_whole(local_store: ResultStore) -> None:
    local_store.put_bytes(b"old", "a/b.txt", content_type="text/plain")
    local_store.put_bytes(b"new content", "a/b.txt", content_type="text/plain")
    assert local_store.read_bytes("a/b.txt") == b"new content"


def test_local_failed_write_leaves_nothing(local_store: ResultStore) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), local_store._atomic_writer("x/clip.mp4", "video/mp4") as f:
        f.write(b"half a clip")
        raise Boom
    assert local_store.size("x/clip.mp4") is None
    results = Path(local_store.root)
    assert [p for p in results.rglob("*") if p.is_file()] == []


def test_local_reader_never_sees_a_partial_object(local_store: ResultStore) -> None:
    local_store.put_bytes(b"old", "x/clip.mp4", content_type="video/mp4")
    with local_store._atomic_writer("x/clip.mp4", "video/mp4") as f:
        f.write(b"new, longer content")
        f.flush()
        assert local_store.read_bytes("x/clip.mp4") == b"old"
    assert local_store.read_bytes("x/clip.mp4") == b"new, longer content"


def test_local_signed_url_round_trip(local_store: ResultStore) -> None:
    key = "jobs/j 1/clip ü.mp4"
    local_store.put_bytes(b"x", key, content_type="video/mp4")
    before = time.time()
    signed = local_store.signed_url(key, ttl_s=600)

    assert signed.url.startswith("http://api.test:8000/files/jobs/j%201/clip%20%C3%BC.mp4?")
    got_key, expires, sig = link_parts(signed)
    assert got_key == key
    assert int(expires) == int(signed.expires_at.timestamp())
    assert before + 599 <= signed.expires_at.timestamp() <= time.time() + 601
    assert signed.expires_at.tzinfo is not None
    verify_link(SECRET, got_key, expires, sig)  # accepted: no exception


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"key": "jobs/j1/other.mp4"}, "bad_signature"),
        ({"expires": "+1"}, "bad_signature"),
        ({"sig": "flip"}, "bad_signature"),
        ({"secret": b"another-secret"}, "bad_signature"),
        ({"expires": "soon"}, "bad_signature"),
        ({"sig": "zz"}, "bad_signature"),
        ({"sig": "é" * 64}, "bad_signature"),
        ({"now": "+3600"}, "link_expired"),
    ],
)
def test_local_link_tampering_and_expiry(local_store: ResultStore, change: dict, code: str) -> None:
    signed = local_store.signed_url("jobs/j1/clip.mp4", ttl_s=60)
    key, expires, sig = link_parts(signed)
    args = {"secret": SECRET, "key": key, "expires": expires, "sig": sig, "now": None}
    for name, value in change.items():
        if value == "+1":
            args[name] = str(int(expires) + 1)
        elif value == "+3600":
            args[name] = time.time() + 3600
        elif value == "flip":
            args[name] = ("0" if sig[0] != "0" else "1") + sig[1:]
        else:
            args[name] = value
    with pytest.raises(ClipError) as err:
        verify_link(args["secret"], args["key"], args["expires"], args["sig"], now=args["now"])
    assert err.value.code == code
    assert err.value.status_code == 403


def test_expiry_is_checked_against_the_clock() -> None:
    expires = int(time.time()) - 1
    with pytest.raises(ClipError) as err:
        verify_link(SECRET, "k", expires, sign_key(SECRET, "k", expires))
    assert err.value.code == "link_expired"
    verify_link(SECRET, "k", expires, sign_key(SECRET, "k", expires), now=expires)


def test_sign_key_is_hmac_sha256_hex() -> None:
    sig = sign_key(SECRET, "a/b.mp4", 1700000000)
    assert len(sig) == 64 and int(sig, 16) >= 0
    assert sig != sign_key(SECRET, "a/b.mp4", 1700000001)
    assert sig != sign_key(b"other", "a/b.mp4", 1700000000)
    assert sig != hashlib.sha256(b"a/b.mp4").hexdigest()


@pytest.mark.parametrize(
    "key",
    ["../secret", "a/../../etc/passwd", "/etc/passwd", "a//b", "a/./b", "", "a\\..\\b", "a/"],
)
def test_keys_that_escape_the_root_are_refused(local_store: ResultStore, key: str) -> None:
    with pytest.raises(ClipError) as err:
        local_store.local_path(key)
    assert err.value.code == "invalid_request"
    with pytest.raises(ClipError):
        local_store.put_bytes(b"x", key, content_type="text/plain")


def test_symlink_out_of_the_root_is_refused(local_store: ResultStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("no")
    (Path(local_store.root) / "link").symlink_to(outside)
    with pytest.raises(ClipError) as err:
        local_store.local_path("link/secret.txt")
    assert err.value.code == "invalid_request"


def test_delete_prefix_removes_only_that_prefix(local_store: ResultStore) -> None:
    for key in ["jobs/abc/clip.mp4", "jobs/abc/sub/clip.srt", "jobs/abcd/clip.mp4"]:
        local_store.put_bytes(b"x", key, content_type="text/plain")
    local_store.delete_prefix("jobs/abc")
    local_store.delete_prefix("jobs/never-existed")
    assert local_store.size("jobs/abc/clip.mp4") is None
    assert local_store.size("jobs/abc/sub/clip.srt") is None
    assert local_store.size("jobs/abcd/clip.mp4") == 1
    with pytest.raises(ClipError):
        local_store.delete_prefix("")


def test_from_settings_uses_the_resolved_defaults(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, signing_secret="s3cret", http_port=9999)
    store = ResultStore.from_settings(settings)
    assert store.is_local
    assert Path(store.root) == (tmp_path / "results").resolve()
    signed = store.signed_url("a.mp4", ttl_s=10)
    assert signed.url.startswith("http://127.0.0.1:9999/files/a.mp4?")
    verify_link(b"s3cret", *link_parts(signed))


def test_local_check_fails_when_the_root_is_gone(local_store: ResultStore) -> None:
    Path(local_store.root).rmdir()
    with pytest.raises(OSError):
        local_store.check()


# --- S3 backend (moto server over HTTP) ---------------------------------------------------------


def test_s3_multipart_round_trip(
    s3_store: ResultStore, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "big.mp4"
    src.write_bytes(os.urandom(12 * 2**20 + 5))

    assert not s3_store.is_local
    assert s3_store.put_file(src, "jobs/j1/clip.mp4", content_type="video/mp4") == (
        src.stat().st_size
    )

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    head = client.head_object(Bucket=s3_bucket, Key="results/jobs/j1/clip.mp4")
    assert head["ContentType"] == "video/mp4"
    assert head["ContentLength"] == src.stat().st_size
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    assert s3_store.size("jobs/j1/clip.mp4") == src.stat().st_size
    assert s3_store.read_bytes("jobs/j1/clip.mp4") == src.read_bytes()
    # No multipart upload is left dangling.
    assert "Uploads" not in client.list_multipart_uploads(Bucket=s3_bucket)


def test_s3_small_objects_and_delete(s3_store: ResultStore, s3_endpoint: str, s3_bucket: str):
    s3_store.put_bytes(b"WEBVTT\n\n", "jobs/j2/clip.vtt", content_type="text/vtt")
    s3_store.put_bytes(b"1", "jobs/j22/clip.srt", content_type="application/x-subrip")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    head = client.head_object(Bucket=s3_bucket, Key="results/jobs/j2/clip.vtt")
    assert head["ContentType"] == "text/vtt"
    assert s3_store.read_bytes("jobs/j2/clip.vtt") == b"WEBVTT\n\n"
    assert s3_store.size("jobs/j2/missing") is None

    s3_store.delete_prefix("jobs/j2")
    s3_store.delete_prefix("jobs/nothing-here")
    assert s3_store.size("jobs/j2/clip.vtt") is None
    assert s3_store.size("jobs/j22/clip.srt") == 1


def test_s3_failed_upload_leaves_nothing(s3_store: ResultStore, s3_endpoint: str, s3_bucket: str):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), s3_store._atomic_writer("jobs/j3/clip.mp4", "video/mp4") as f:
        f.write(os.urandom(9 * 2**20))  # one part already uploaded
        raise Boom
    assert s3_store.size("jobs/j3/clip.mp4") is None
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    assert "Uploads" not in client.list_multipart_uploads(Bucket=s3_bucket)


def test_s3_presigned_url_serves_the_object(s3_store: ResultStore, s3_endpoint: str) -> None:
    data = os.urandom(1000)
    s3_store.put_bytes(data, "jobs/j4/clip.mp4", content_type="video/mp4")
    signed = s3_store.signed_url("jobs/j4/clip.mp4", ttl_s=600)

    assert signed.url.startswith(s3_endpoint)
    response = httpx.get(signed.url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "video/mp4"
    # (moto accepts any signature and expiry on presigned URLs, so refusal cannot be shown here.)


def test_s3_presigned_url_carries_its_expiry(s3_store: ResultStore) -> None:
    s3_store.put_bytes(b"x", "jobs/j5/clip.mp4", content_type="video/mp4")
    signed = s3_store.signed_url("jobs/j5/clip.mp4", ttl_s=1)
    query = parse_qs(urlsplit(signed.url).query)
    # SigV4: X-Amz-Date + X-Amz-Expires is when S3 stops honouring the URL. (moto does not
    # enforce presigned expiry, so the server cannot be the judge here.)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert int(query["X-Amz-Expires"][0]) == 1
    assert abs((signed.expires_at - signed_at).total_seconds() - 1) <= 1


def test_s3_check(s3_store: ResultStore, s3_endpoint: str) -> None:
    s3_store.check()
    missing = ResultStore(
        "s3://no-such-bucket-here/results",
        public_base_url="http://api.test",
        secret=SECRET,
        endpoint_url=s3_endpoint,
    )
    with pytest.raises(Exception):  # noqa: B017 - any error: the probe only needs to fail
        missing.check()
    with pytest.raises(RuntimeError):
        missing.local_path("a.mp4")


def test_s3_check_fails_fast_when_the_endpoint_is_down(s3_endpoint: str) -> None:
    # s3_endpoint only for the AWS credentials it puts in the environment.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    down = ResultStore(
        "s3://bucket/results",
        public_base_url="http://api.test",
        secret=SECRET,
        endpoint_url=f"http://127.0.0.1:{port}",
    )
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - botocore's connection error, whatever its class
        down.check()
    assert time.monotonic() - started < 20
