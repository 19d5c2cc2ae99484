"""Settings: one frozen object, built once from defaults < ini file < environment < flags.

Every value is validated here, once, with a message that names the key, the value and where it
came from. Nothing else in spxdl reads configuration: it is handed a ``Settings``. ``settings``
holds the object, ``parsers`` turn text into values, ``keys`` lists every key, ``loading`` builds
the effective settings.
"""

from spxdl.config.keys import ENV_PREFIX, KEYS, KEYS_BY_FIELD, KEYS_BY_NAME, SECTIONS, KeySpec, describe
from spxdl.config.loading import (
    CONFIG_ENV,
    LOCAL_CONFIG,
    USER_CONFIG,
    check_consistency,
    find_config_file,
    load,
    read_config_file,
    read_environment,
)
from spxdl.config.parsers import parse_number, parse_url
from spxdl.config.settings import COMPRESSIONS, LEVELLED_CODECS, RATES, Settings, format_value

__all__ = [
    "COMPRESSIONS", "CONFIG_ENV", "ENV_PREFIX", "KEYS", "KEYS_BY_FIELD", "KEYS_BY_NAME", "LEVELLED_CODECS",
    "LOCAL_CONFIG", "RATES", "SECTIONS", "USER_CONFIG", "KeySpec", "Settings", "check_consistency", "describe",
    "find_config_file", "format_value", "load", "parse_number", "parse_url", "read_config_file",
    "read_environment",
]
