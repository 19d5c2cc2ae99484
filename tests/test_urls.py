"""One check of a terminal URL (spxdl.urls), used by the settings and by the client alike; object-store URIs
told from paths and shown without their credentials."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spxdl import config, urls
from spxdl.errors import ConfigError
from spxdl.terminal import TerminalClient, check_terminal_url


@pytest.mark.parametrize(
    "text, expected",
    [
        ("http://127.0.0.1:25503", "http://127.0.0.1:25503"),
        ("http://localhost:25510/", "http://localhost:25510"),
        (" https://Terminal.example:25503/v3 ", "https://Terminal.example:25503"),  # the host as written
        ("http://127.0.0.1:25510/v2/", "http://127.0.0.1:25510"),
    ],
)
def test_settings_and_client_accept_the_same_urls_alike(text, expected):
    assert check_terminal_url(text) == expected
    assert config.load(env={"SPXDL_TERMINAL_URL": text}).terminal_url == expected
    assert TerminalClient(text).base_url == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("127.0.0.1:25503", "expected a URL like http://127.0.0.1:25503"),
        ("ftp://127.0.0.1:25503", "expected a URL like http://127.0.0.1:25503"),
        ("http://", "expected a URL like http://127.0.0.1:25503"),
        ("http://127.0.0.1:port", "the port is not a number"),
        ("http://127.0.0.1:25503/v3/option", "give the terminal's base URL without a path"),
    ],
)
def test_settings_and_client_refuse_the_same_urls_for_the_same_reason(text, reason):
    with pytest.raises(ConfigError) as caught:
        check_terminal_url(text)
    assert str(caught.value).startswith(reason)
    with pytest.raises(ConfigError) as caught:
        config.load(env={"SPXDL_TERMINAL_URL": text})
    assert f"terminal.url = {text!r} from env SPXDL_TERMINAL_URL: {reason}" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        TerminalClient(text)
    assert str(caught.value).startswith(f"bad terminal URL {text!r}: {reason}")
    assert caught.value.key == "terminal_url"


def test_reading_settings_does_not_load_the_client():
    """config imports the check only when a URL is given: the terminal package loads requests."""
    code = "import sys, spxdl.config; print(sorted({'requests', 'spxdl.terminal'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------ object-store URIs (data_dir = s3://...)

SECRET = "wJalr/XUtnFEMI+K7MDENGbPxRfiCY"  # shaped like an AWS secret key: '/' and '+' in it


@pytest.mark.parametrize(
    "text, shown",
    [
        (f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix", "s3://***@bucket/prefix"),
        ("s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http",
         "s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http"),  # nothing secret: as it is
        ("s3://bucket/p?secret_key=abc&region=us-east-1", "s3://bucket/p?secret_key=***&region=us-east-1"),
        ("gs://user@bucket/p", "gs://***@bucket/p"),
        ("/srv/spx", "/srv/spx"),
        ("data", "data"),
    ],
)
def test_redact_hides_the_credentials_a_uri_carries_and_leaves_other_text_alone(text, shown):
    assert urls.redact(text) == shown
    assert urls.has_credentials(text) == (shown != text)
    assert SECRET not in urls.redact(text) and "AKIAEXAMPLE" not in urls.redact(text)


@pytest.mark.parametrize("text, remote", [("s3://b/p", True), ("gs://b", True), ("abfs://c@acct/p", True),
                                          ("file:///srv/spx", False), ("/srv/spx", False), ("data", False)])
def test_object_stores_are_told_from_local_paths(text, remote):
    assert urls.is_store_uri(text) is remote
