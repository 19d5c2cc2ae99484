"""What a usable terminal URL is, and what an object-store URI is: ``config`` and their users check alike.

A terminal URL is checked by the client and ``config`` with the same function. An object-store
URI (``data_dir = s3://bucket/prefix``) is told from a local path here, and shown everywhere
through ``redact``: credentials written into a URI never reach a log, a report or a file.
Imports nothing of spxdl but ``errors``, so that reading settings does not load the HTTP client.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

from spxdl.errors import ConfigError


def check_terminal_url(text: str) -> str:
    """The terminal's base URL as ``scheme://host[:port]``; ConfigError saying what is wrong.

    http or https with a host and, if given, a numeric port; no path but an API's own ``/v2`` or
    ``/v3``, which is dropped. The host stays as written: the terminal tells spellings apart (476).
    """
    parts = urlsplit(text.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("expected a URL like http://127.0.0.1:25503", key="terminal_url")
    try:
        parts.port
    except ValueError:
        raise ConfigError("the port is not a number", key="terminal_url") from None
    if parts.path not in ("", "/v2", "/v3"):
        raise ConfigError(
            "give the terminal's base URL without a path, like http://127.0.0.1:25503", key="terminal_url"
        )
    return f"{parts.scheme}://{parts.netloc}"


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, lower-case host and port (the scheme's default if absent): what makes two URLs one server."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def without_host(value: str) -> str:
    """A URL's path and query only (files must not name the machine they came from); other text as it is."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return value


def with_host(value: str, host: str = "127.0.0.1") -> str:
    """A URL with its host replaced by ``host`` (the port kept); other text as it is."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return value
    netloc = host + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


# The object stores pyarrow.fs resolves from a URI (file:// is a local path).
STORE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")
SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
SECRET_WORDS = ("key", "secret", "token", "password", "signature", "credential", "sas", "sig")
HIDDEN = "***"


def uri_scheme(text: str) -> str | None:
    """The lower-case scheme of ``scheme://...`` text; None for a plain path."""
    match = SCHEME.match(text.strip())
    return match.group("scheme").lower() if match else None


def is_store_uri(text: str) -> bool:
    """Whether ``text`` names an object store (``s3://...``, ``gs://...``), not a local path (``file://`` is one)."""
    scheme = uri_scheme(str(text))
    return scheme is not None and scheme != "file"


def check_store_uri(text: str) -> str:
    """An object-store URI as ``scheme://bucket[/prefix][?options]``; ValueError saying what is wrong.

    The scheme must be one pyarrow.fs resolves, with a bucket (or host) after it; a trailing ``/``
    of the prefix is dropped. Credentials in it are allowed (pyarrow reads them) and always redacted.
    """
    text = text.strip()
    scheme = uri_scheme(text)
    if scheme not in STORE_SCHEMES:
        raise ValueError(f"{scheme}:// is not an object store spxdl knows; use a local path or one of "
                         + ", ".join(f"{name}://" for name in STORE_SCHEMES))
    location, mark, query = text.partition("?")
    bucket = location[len(scheme) + 3:].rpartition("@")[2].split("/", 1)[0]
    if not bucket and scheme not in ("hdfs", "viewfs"):  # hdfs:///path: the default name node
        raise ValueError(f"expected a bucket after {scheme}://, like {scheme}://bucket/prefix")
    return location.rstrip("/") + mark + query


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def _secret_userinfo(scheme: str, location: str) -> bool:
    """Whether the part before ``@`` is a credential: ``KEY:SECRET`` anywhere, and any of it for S3 and
    GCS (an Azure ``container@account`` or an HDFS ``user@host`` names, it does not unlock)."""
    userinfo = location.rpartition("@")[0]
    return ":" in userinfo or (bool(userinfo) and scheme in ("s3", "gs", "gcs"))


def has_credentials(text: str) -> bool:
    """Whether a URI carries credentials (``s3://KEY:SECRET@bucket``, or a secret-looking query option)."""
    text = str(text)
    match = SCHEME.match(text)
    if not match:
        return False
    location, _, query = text[match.end():].partition("?")
    return _secret_userinfo(match.group("scheme").lower(), location) or any(
        _is_secret(name) for name, _ in parse_qsl(query, keep_blank_values=True))


def redact(text: str) -> str:
    """``text`` with a URI's credentials hidden: ``s3://KEY:SECRET@bucket/p`` shows as ``s3://***@bucket/p``,
    and query options named like a key, secret or token show ``***``. Other text is returned as it is."""
    text = str(text)
    match = SCHEME.match(text)
    if not match or not has_credentials(text):
        return text
    location, mark, query = text[match.end():].partition("?")
    if _secret_userinfo(match.group("scheme").lower(), location):
        location = f"{HIDDEN}@{location.rpartition('@')[2]}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_is_secret(name) for name, _ in pairs):
        query = urlencode([(name, HIDDEN if _is_secret(name) else value) for name, value in pairs], safe=":/*")
    return text[: match.end()] + location + mark + query
