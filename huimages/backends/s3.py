"""S3 plumbing shared by the originals store and the CDN (as ``couch.py`` is for CouchDB).

``make_client`` builds a boto3 client with bounded timeouts and standard
retries; ``Bucket`` is the few object operations huimages needs, each with the
SHA-1 checksum on writes and boto3's errors translated into
``huimages.errors`` (decided by S3's error codes, never by message text).
Messages name the bucket and endpoint, never credentials.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from huimages.config import Settings
from huimages.errors import BackendUnavailable, HuImagesError, StorageError
from huimages.telemetry import metrics

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_CREDENTIALS = frozenset(
    {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)
_TRANSIENT = frozenset(
    {"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
)
_PUBLIC_GROUPS = ("/global/AllUsers", "/global/AuthenticatedUsers")
_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


#: Attempts of one S3 call: a refused or dropped connection and a 503 are tried once more.
ATTEMPTS = 2


def make_client(settings: Settings, service: str = "s3") -> Any:
    """A boto3 client for ``service`` with the settings' credentials, and every call bounded by the backend timeout.

    Both attempts of a call against a server that accepts and never answers,
    and the pause between them (botocore's, under a second), end within
    ``HUIMAGES_BACKEND_TIMEOUT``: each attempt may wait for a byte for half of
    what is left after that pause. A slow but moving transfer is not cut: the
    timeout is per read, not per object.
    """
    timeout = settings.backend_timeout
    per_attempt = max(0.5, (timeout - 1.0) / ATTEMPTS)
    config = Config(
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
        connect_timeout=min(3.0, per_attempt),
        read_timeout=per_attempt,
        max_pool_connections=32,
        # Checksums are sent explicitly (SHA-1 = the ID for originals); no
        # aws-chunked bodies, which several S3-compatible stores do not accept.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    s3 = settings.s3
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=s3.endpoint_url if service == "s3" else None,
        region_name=s3.region,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        config=config,
    )


def sha1_checksum(data: bytes) -> str:
    """The value of ``x-amz-checksum-sha1``: S3 refuses the upload if the bytes differ."""
    return base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


class Bucket:
    """One bucket, for one backend (``backend`` names it in errors)."""

    def __init__(self, client: Any, name: str, backend: str) -> None:
        self.client = client
        self.name = name
        self.backend = backend
        endpoint = urlsplit(client.meta.endpoint_url)
        self.where = f"bucket {name} at {endpoint.hostname}:{endpoint.port or 443}"

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        with self.errors(f"read {key}"):
            try:
                response = self.client.get_object(Bucket=self.name, Key=key)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise
            return bytes(response["Body"].read())

    def put(self, key: str, data: bytes, content_type: str, **extra: str) -> None:
        """Store ``data`` (S3 checks it against its SHA-1); ``extra`` adds e.g. ``CacheControl``."""
        with self.errors(f"write {key}"):
            self.client.put_object(
                Bucket=self.name,
                Key=key,
                Body=data,
                ContentType=content_type,
                ChecksumSHA1=sha1_checksum(data),
                **extra,
            )

    def size(self, key: str) -> int | None:
        """The object's length, or None when there is no such object."""
        with self.errors(f"look up {key}"):
            try:
                return int(self.client.head_object(Bucket=self.name, Key=key)["ContentLength"])
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise

    def get_prefix(self, key: str, length: int) -> bytes | None:
        """The first ``length`` bytes of an object (a ranged GET), or None when there is no such object."""
        with self.errors(f"read the start of {key}"):
            try:
                response = self.client.get_object(Bucket=self.name, Key=key, Range=f"bytes=0-{length - 1}")
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise
            return bytes(response["Body"].read())

    def keys(self, after: str = "", limit: int = 1000) -> list[str]:
        """Up to ``limit`` keys in key order, after ``after``."""
        return [key for key, _modified in self.objects(after, limit)]

    def objects(self, after: str = "", limit: int = 1000) -> list[tuple[str, float]]:
        """Up to ``limit`` keys in key order, after ``after``, each with its last modification (epoch seconds)."""
        with self.errors("list the bucket"):
            answer = self.client.list_objects_v2(Bucket=self.name, StartAfter=after, MaxKeys=limit)
        return [(str(item["Key"]), item["LastModified"].timestamp()) for item in answer.get("Contents", [])]

    def is_public(self, key: str) -> bool:
        """Whether the object's ACL grants anything to everyone (or to every AWS user)."""
        with self.errors(f"read the ACL of {key}"):
            grants = self.client.get_object_acl(Bucket=self.name, Key=key)["Grants"]
        return any(str(g.get("Grantee", {}).get("URI", "")).endswith(_PUBLIC_GROUPS) for g in grants)

    def make_private(self, key: str) -> None:
        """Replace the object's ACL by the private one (owner only)."""
        with self.errors(f"make {key} private"):
            self.client.put_object_acl(Bucket=self.name, Key=key, ACL="private")

    def delete(self, key: str) -> None:
        with self.errors(f"delete {key}"):
            self.client.delete_object(Bucket=self.name, Key=key)

    def delete_many(self, keys: list[str]) -> None:
        """Delete these objects (missing ones are not an error), 1,000 a request; ``StorageError`` naming a failure."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            with self.errors(f"delete {len(chunk)} objects"):
                answer = self.client.delete_objects(
                    Bucket=self.name, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
                )
            failed = answer.get("Errors") or []
            if failed:
                first = failed[0]
                raise StorageError(
                    self.backend,
                    f"{self.where}: {len(failed)} objects not deleted, {first.get('Key')}: {first.get('Message')}",
                )

    def ping(self) -> None:
        """Raise unless the bucket exists and the credentials may use it."""
        with self.errors("reach the bucket"):
            try:
                self.client.head_bucket(Bucket=self.name)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    raise StorageError(
                        self.backend, f"{self.where} does not exist: create it, or fix the setting"
                    ) from None
                raise

    def errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return s3_errors(self.backend, self.where, action)


@contextlib.contextmanager
def s3_errors(backend: str, where: str, action: str) -> Iterator[None]:
    """boto3 errors in plain words: unreachable or overloaded (retry later) or a fault to fix."""
    with metrics.backend_call(backend, action):
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


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
