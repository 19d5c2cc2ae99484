"""What a usable terminal URL is: the client and ``config`` check with the same function.

Imports nothing of spxdl but ``errors``, so that reading settings does not load the HTTP client.
"""

from __future__ import annotations

from urllib.parse import urlsplit

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
