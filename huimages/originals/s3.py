"""Originals in an S3 bucket (or any S3-compatible store), as huImages kept them.

The object key is the image ID. Objects are private: no ACL is ever set, so
they inherit the bucket's (private) default. Each upload carries its SHA-1
(``x-amz-checksum-sha1``), which is the image's content address, so S3 itself
rejects bytes that do not match the ID; each download is checked against the
ID again. A local copy of every original read or written is kept on disk, so
rendering a second size does not download the original again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from huimages.config import Settings
from huimages.errors import BackendUnavailable, HuImagesError, StorageError
from huimages.fsutil import atomic_write
from huimages.ids import matches
from huimages.originals.base import OriginalsStore

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_CREDENTIALS = frozenset(
    {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)
_TRANSIENT = frozenset(
    {"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
)
_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def make_client(settings: Settings) -> Any:
    """A boto3 S3 client for the settings: standard retries, bounded timeouts."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=min(3.0, settings.backend_timeout),
        read_timeout=settings.backend_timeout * 3,
        max_pool_connections=32,
        # Checksums are sent explicitly (SHA-1 = the ID); no aws-chunked bodies,
        # which several S3-compatible stores do not accept.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        config=config,
    )


class S3Store(OriginalsStore):
    name = "s3 originals"

    def __init__(self, bucket: str, client: Any, local_cache: Path | None = None) -> None:
        self.bucket = bucket
        self.client = client
        self.local_cache = local_cache
        self.where = describe_endpoint(client, bucket)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        assert settings.s3_bucket
        return cls(settings.s3_bucket, make_client(settings), settings.originals_cache)

    # -- local copies ---------------------------------------------------------

    def _local(self, image_id: str) -> Path | None:
        return None if self.local_cache is None else self.local_cache / image_id[:2] / image_id

    def _keep_local(self, image_id: str, data: bytes) -> None:
        path = self._local(image_id)
        if path is not None:
            with contextlib.suppress(OSError):  # the local copy is an optimisation only
                atomic_write(path, data)

    # -- primitives -----------------------------------------------------------

    def _read(self, image_id: str) -> bytes | None:
        path = self._local(image_id)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                data = path.read_bytes()
                if matches(image_id, data):
                    return data
                path.unlink()  # a damaged local copy: fetch it again
        with self._errors(f"read {image_id}"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=image_id)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise
            data = response["Body"].read()
        if not matches(image_id, data):
            raise StorageError(self.name, f"{image_id} in {self.where} does not match its ID (corrupt object)")
        self._keep_local(image_id, data)
        return bytes(data)

    def _write(self, image_id: str, data: bytes, content_type: str) -> None:
        with self._errors(f"write {image_id}"):
            self.client.put_object(
                Bucket=self.bucket, Key=image_id, Body=data, ContentType=content_type, ChecksumSHA1=sha1_checksum(data)
            )
        self._keep_local(image_id, data)

    def _size(self, image_id: str) -> int | None:
        path = self._local(image_id)
        if path is not None and path.is_file():
            return path.stat().st_size
        with self._errors(f"look up {image_id}"):
            try:
                return int(self.client.head_object(Bucket=self.bucket, Key=image_id)["ContentLength"])
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise

    def _remove(self, image_id: str) -> None:
        with self._errors(f"delete {image_id}"):
            self.client.delete_object(Bucket=self.bucket, Key=image_id)
        path = self._local(image_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def ping(self) -> None:
        with self._errors("reach the bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    raise StorageError(self.name, f"{self.where} does not exist: create it, or fix S3BUCKET") from None
                raise

    def drop_local(self, image_id: str) -> None:
        """Forget the local copy, so the next read goes to S3."""
        path = self._local(image_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def read_back(self, image_id: str) -> bytes | None:
        self.drop_local(image_id)
        try:
            return self._read(image_id)
        except StorageError as exc:
            if "does not match its ID" in exc.reason:
                return b""  # present but corrupt: not verified
            raise

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return s3_errors(self.name, self.where, action)


@contextlib.contextmanager
def s3_errors(backend: str, where: str, action: str) -> Iterator[None]:
    """boto3 errors in plain words: unreachable or overloaded (retry later) or a fault to fix."""
    try:
        yield
    except HuImagesError:
        raise
    except _UNREACHABLE as exc:
        raise BackendUnavailable(backend, f"cannot {action}: no answer from {where}") from exc
    except botocore.exceptions.NoCredentialsError:
        raise StorageError(backend, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except botocore.exceptions.ClientError as exc:
        code = _code(exc)
        if code == "NoSuchBucket":
            raise StorageError(backend, f"{where} does not exist: create it, or fix the bucket setting") from None
        if code in _CREDENTIALS:
            raise StorageError(
                backend,
                f"cannot {action}: {where} refused the credentials "
                "(check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket policy)",
            ) from None
        if code in _TRANSIENT:
            raise BackendUnavailable(backend, f"cannot {action}: {where} answered {code}") from exc
        raise StorageError(backend, f"cannot {action}: {where} answered {code}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise BackendUnavailable(backend, f"cannot {action}: {exc}") from exc


def sha1_checksum(data: bytes) -> str:
    """The value of ``x-amz-checksum-sha1``: S3 refuses the upload if the bytes differ."""
    return base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def describe_endpoint(client: Any, bucket: str) -> str:
    """``bucket NAME at HOST:PORT``, for messages (never credentials)."""
    endpoint = urlsplit(client.meta.endpoint_url)
    return f"bucket {bucket} at {endpoint.hostname}:{endpoint.port or 443}"


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
