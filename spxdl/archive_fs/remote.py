"""Object stores through ``pyarrow.fs``: a URI resolved once per process, errors in spxdl's words, and uploads
that become visible only complete.

pyarrow's S3 output stream completes (publishes) the object it was writing when an exception ends
the write or when the stream is dropped, and Python cannot abort it; ``copy_files`` can even
return normally after a part failed. So nothing is ever streamed to its final key. An upload goes
to a hidden temp key next to the target (``.<name>.tmp-<pid>-<random>``, which every Parquet
reader skips), is checked there (its size, and for Parquet its footer read back), and only then
moved to the final key with a server-side copy, which makes the object appear whole at once. On
any failure the temp key is deleted; a killed process leaves at most a hidden temp object (swept
by age) or an invisible unfinished multipart upload (the bucket's AbortIncompleteMultipartUpload
rule ends those). docs/storage.md has the measurements behind each step.

Every output stream is closed in the function that opened it: one left open when the interpreter
exits hangs the process.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
from pathlib import PurePosixPath
from typing import Callable, Iterator

import pyarrow.fs as pafs

from spxdl import storage
from spxdl.errors import (
    BucketMissing,
    ConfigError,
    ObjectStoreDenied,
    ObjectStoreError,
    ObjectStoreUnreachable,
    StorageError,
)
from spxdl.urls import has_credentials, redact

CHUNK = 8 << 20
# What the AWS SDK says (through pyarrow) when the endpoint does not answer, or refuses the caller.
UNREACHABLE = ("NETWORK_CONNECTION", "curlCode", "Could not connect", "Couldn't connect", "Connection refused",
               "Could not resolve host", "Timeout was reached")
DENIED = ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "EXPIRED_TOKEN", "INVALID_TOKEN",
          "HTTP response code 403", "AccessDenied", "Forbidden")
NO_BUCKET = ("NO_SUCH_BUCKET", "NoSuchBucket", "bucket does not exist")
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@functools.lru_cache(maxsize=16)
def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path (``bucket/prefix``) of an object-store URI, made once per process.

    pyarrow reads the endpoint and credentials from the URI (``?endpoint_override=``, ``?region=``,
    ``KEY:SECRET@``) and from its library's own chain (``AWS_*`` variables, ``~/.aws``).
    """
    try:
        filesystem, root = pafs.FileSystem.from_uri(uri)
    except ValueError as exc:  # pyarrow's ArrowInvalid: an option or a scheme it does not take
        hint = ("; credentials in a URI must be percent-encoded ('/' as %2F), or better left to AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY" if has_credentials(uri) else "")
        raise ConfigError(f"[storage] data_dir {redact(uri)} cannot be used: {scrub(str(exc), uri)}{hint}",
                          key="storage.data_dir") from None
    except OSError as exc:
        raise classify(exc, redact(uri), "connecting", uri) from None
    return filesystem, root.rstrip("/")


def scrub(text: str, uri: str | None = None) -> str:
    """``text`` without any credential it could carry: the URI's, and those of the AWS variables."""
    found = [os.environ.get(name) for name in CREDENTIAL_VARIABLES]
    if uri is not None and has_credentials(uri):
        userinfo = uri.partition("://")[2].partition("?")[0].rpartition("@")[0]
        found += [userinfo, *userinfo.split(":", 1)]
        text = text.replace(uri, redact(uri))
    for secret in sorted({value for value in found if value and len(value) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def classify(exc: OSError, shown: str, doing: str, uri: str | None = None) -> ObjectStoreError:
    """pyarrow's OSError as one of spxdl's, in one line naming the fix where there is one."""
    text = scrub(str(exc), uri)
    detail = text[text.index("AWS Error"):] if "AWS Error" in text else text
    if any(word in text for word in UNREACHABLE):
        return ObjectStoreUnreachable(
            f"the object store of {shown} does not answer ({doing}: {detail}); check its endpoint "
            "(AWS_ENDPOINT_URL, or ?endpoint_override= in data_dir) and the network; `spxdl resume` finishes the run",
            path=shown)
    if any(word in text for word in DENIED):
        return ObjectStoreDenied(
            f"the object store refused access to {shown} ({doing}: {detail}); check the credentials "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials) and the bucket's "
            "permissions", path=shown)
    if any(word in text for word in NO_BUCKET):
        return BucketMissing(f"the bucket of {shown} does not exist ({doing}); create it, or fix [storage] data_dir",
                             path=shown)
    return ObjectStoreError(f"{doing} {shown} failed: {detail}", path=shown)


@contextlib.contextmanager
def store_errors(shown: str, doing: str) -> Iterator[None]:
    """Turn pyarrow's OSError raised inside the block into spxdl's (FileNotFoundError passes through)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except ObjectStoreError:
        raise
    except OSError as exc:
        raise classify(exc, shown, doing) from None


def temp_key(final: str) -> str:
    """A hidden temp key next to ``final``, named like a local temp file (``.<name>.tmp-<pid>-<random>``)."""
    target = PurePosixPath(final)
    return str(target.with_name(storage.temp_prefix(target) + secrets.token_hex(4)))


def upload(filesystem: pafs.FileSystem, final: str, fill: Callable[[pafs.NativeFile], None], size: int, *,
           shown: str, check: Callable[[str], None] | None = None) -> None:
    """Make ``final`` hold what ``fill`` writes (``size`` bytes), complete, or leave it as it was.

    ``fill`` writes into a temp key's stream; the temp object must then have ``size`` bytes and
    pass ``check`` (given its key) before a server-side move puts it at ``final``. The temp key is
    deleted on any failure.
    """
    temp = temp_key(final)
    try:
        with store_errors(shown, "uploading"):
            stream = filesystem.open_output_stream(temp)
            try:
                fill(stream)
            finally:
                stream.close()  # a failed part raises here; a partial write completes only the temp key
            arrived = filesystem.get_file_info(temp).size
            if arrived != size:
                raise ObjectStoreError(f"{shown}: {arrived} of {size} bytes arrived; nothing was published",
                                       path=shown)
            if check is not None:
                check(temp)
            filesystem.move(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            filesystem.delete_file(temp)
        raise


def copy_from(path: os.PathLike[str] | str) -> Callable[[pafs.NativeFile], None]:
    """A ``fill`` that copies a local file in chunks."""

    def fill(stream: pafs.NativeFile) -> None:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                stream.write(chunk)

    return fill


def parquet_rows(filesystem: pafs.FileSystem, key: str, shown: str) -> int:
    """The row count in an object's Parquet footer (ranged reads); StorageError if it is not readable Parquet."""
    import pyarrow.parquet as pq  # here: the ledger and a run with nothing to do never load Parquet

    try:
        with filesystem.open_input_file(key) as handle:
            return pq.read_metadata(handle).num_rows
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and any(
                word in str(exc) for word in UNREACHABLE + DENIED):
            raise classify(exc, shown, "reading") from None
        raise StorageError(f"{shown} is not a readable Parquet file: {exc}", path=shown) from None


def sha256_object(filesystem: pafs.FileSystem, key: str) -> str:
    """Hex sha256 of an object's bytes, read as a stream."""
    digest = hashlib.sha256()
    with filesystem.open_input_stream(key) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(filesystem: pafs.FileSystem, prefix: str, *, recursive: bool) -> list[pafs.FileInfo]:
    """The objects under ``prefix`` (one listing, paged by the store); none if it does not exist."""
    selector = pafs.FileSelector(prefix, recursive=recursive, allow_not_found=True)
    return [info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]
