"""Building the effective ``Settings``: defaults < ini file < ``SPXDL_*`` environment < flags, checked once."""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any, Mapping

from spxdl import datasets
from spxdl.config.keys import ENV_PREFIX, KEYS, KEYS_BY_FIELD, KEYS_BY_NAME, SECTIONS, KeySpec
from spxdl.config.settings import LEVELLED_CODECS, Settings, ledger_dir_needed
from spxdl.errors import ConfigError
from spxdl.urls import has_credentials, redact

CONFIG_ENV = "SPXDL_CONFIG"
USER_CONFIG = Path("~/.config/spxdl/spxdl.ini")
LOCAL_CONFIG = Path("spxdl.ini")


def _parse(spec: KeySpec, raw: str, source: str) -> Any:
    try:
        return spec.parse(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{spec.section}.{spec.key} = {redact(raw)!r} from {source}: {exc}",
            key=f"{spec.section}.{spec.key}",
            source=source,
        ) from None


def find_config_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """The ini file to read: ``--config``, else ``$SPXDL_CONFIG``, else the user's, else ``./spxdl.ini``."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; fix the --config path", source="--config")
        return path
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} (from ${CONFIG_ENV}) does not exist; fix or unset ${CONFIG_ENV}", source=CONFIG_ENV)
        return path
    for candidate in (USER_CONFIG.expanduser(), LOCAL_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, tuple[str, str]]:
    """Raw values from an ini file: ``{field: (text, source)}``; unknown sections or keys are errors."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (configparser.Error, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} cannot be parsed: {first_line}", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}", source=str(path)) from None
    raw: dict[str, tuple[str, str]] = {}
    for section in parser.sections():
        if section not in SECTIONS:
            raise ConfigError(
                f"config file {path}: unknown section [{section}]; known: {', '.join(SECTIONS)}",
                source=str(path),
            )
        for key, text in parser.items(section):
            spec = KEYS_BY_NAME.get((section, key))
            if spec is None:
                known = ", ".join(s.key for s in KEYS if s.section == section)
                raise ConfigError(
                    f"config file {path}: unknown key {key!r} in [{section}]; known: {known}",
                    key=f"{section}.{key}",
                    source=str(path),
                )
            raw[spec.field] = (text, f"file {path}")
    return raw


def read_environment(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Raw values from ``SPXDL_<SECTION>_<KEY>`` variables; an unknown key in a known section is an error."""
    by_env = {spec.env_name: spec for spec in KEYS}
    raw: dict[str, tuple[str, str]] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        spec = by_env.get(name)
        if spec is not None:
            raw[spec.field] = (text, f"env {name}")
            continue
        section = name[len(ENV_PREFIX):].split("_", 1)[0].lower()
        if section in SECTIONS:
            raise ConfigError(
                f"environment variable {name} is not a setting; known in [{section}]: "
                + ", ".join(s.env_name for s in KEYS if s.section == section),
                key=name,
                source="environment",
            )
    return raw


def load(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the effective ``Settings``: defaults < ini file < ``SPXDL_*`` env < ``flags``.

    ``flags`` maps field names to values from the command line (``None`` means not given);
    strings are parsed like file values, other values are taken as already typed.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = find_config_file(config_path, env)
    layers = [read_config_file(path) if path else {}, read_environment(env)]
    for layer in layers:
        for name, (text, source) in layer.items():
            values[name] = _parse(KEYS_BY_FIELD[name], text, source)
            sources[name] = source
    for name, value in (flags or {}).items():
        if value is None:
            continue
        spec = KEYS_BY_FIELD[name]
        source = f"flag --{name.replace('_', '-')}"
        values[name] = _parse(spec, value, source) if isinstance(value, str) else value
        sources[name] = source
    if "compression_level" not in values and values.get("compression", "zstd") not in LEVELLED_CODECS:
        values["compression_level"] = None  # the default level 3 belongs to zstd
    settings = Settings(**values, sources=sources)
    check_consistency(settings)
    return settings


def check_consistency(settings: Settings) -> None:
    """Checks that involve more than one setting."""
    if settings.min_dte > settings.max_dte:
        raise ConfigError(
            f"min_dte {settings.min_dte} is above max_dte {settings.max_dte} "
            f"({settings.sources.get('min_dte', 'default')} / {settings.sources.get('max_dte', 'default')}); "
            "make min_dte <= max_dte",
            key="download.min_dte",
        )
    if settings.compression_level is not None and settings.compression not in LEVELLED_CODECS:
        raise ConfigError(
            f"compression_level {settings.compression_level} does not apply to {settings.compression}; "
            "leave [storage] compression_level empty or use zstd, gzip or brotli",
            key="storage.compression_level",
        )
    if settings.start_time >= settings.end_time:
        raise ConfigError(
            f"start_time {settings.start_time} is not before end_time {settings.end_time}; fix [download] start_time/end_time",
            key="download.start_time",
        )
    if settings.heartbeat_seconds * 2 > settings.stale_after:
        raise ConfigError(
            f"heartbeat_seconds {settings.heartbeat_seconds:g} is more than half of stale_after "
            f"{settings.stale_after:g}: a live claim could look stale; make stale_after at least twice the heartbeat",
            key="engine.stale_after",
        )
    if settings.source == "direct" and settings.calendar_source == "terminal":
        raise ConfigError(
            "[calendar] source = terminal asks a terminal for its calendar, and [terminal] source = direct has "
            "none: use [calendar] source = builtin (and the overrides file), or [terminal] source = terminal",
            key="calendar.source",
        )
    check_storage(settings)
    interval_ms = datasets.interval_ms(settings.interval)
    if interval_ms < 60_000 and (settings.end_ms - settings.start_ms) // interval_ms > 100_000:
        raise ConfigError(
            f"interval {settings.interval} over the whole window is too fine for one request; use 1m or coarser",
            key="download.interval",
        )


def check_storage(settings: Settings) -> None:
    """An object-store data dir needs a ledger dir, and takes its credentials from its own chain, never a file."""
    if settings.data_is_local:
        return
    source = settings.sources.get("data_dir", "default")
    if source.startswith("file ") and has_credentials(str(settings.data_dir)):
        raise ConfigError(
            f"[storage] data_dir = {settings.data_dir_shown} in {source[len('file '):]} carries credentials: "
            "spxdl never reads credentials from its own files; remove them and use the storage library's own chain "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials)",
            key="storage.data_dir", source=source,
        )
    if settings.ledger_dir is None:
        raise ConfigError(ledger_dir_needed(str(settings.data_dir)), key="storage.ledger_dir")
