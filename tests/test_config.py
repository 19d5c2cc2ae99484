"""Settings: precedence defaults < file < environment < flags, validation, and the documented ini file."""

import configparser
from datetime import date, time
from pathlib import Path

import pytest

from spxdl import config
from spxdl.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_INI = REPO / "etc" / "spxdl.ini"


@pytest.fixture(name="ini_file")
def fixture_ini_file(tmp_path):
    """A config file setting a few keys in several sections."""
    path = tmp_path / "spxdl.ini"
    path.write_text(
        "[terminal]\napi = v3\nmax_in_flight = 6\n"
        "[download]\nroots = SPXW, spx\nmax_dte = 30\nstart_date = 2020-01-02\n"
        "[storage]\ndata_dir = /srv/spx\n"
    )
    return path


def load(path=None, env=None, flags=None):
    return config.load(path, env=env or {}, flags=flags)


def test_defaults_without_any_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load()
    assert settings.terminal_api == "auto"
    assert settings.roots == ("SPXW",)
    assert settings.datasets == ("greeks",)
    assert (settings.min_dte, settings.max_dte) == (0, 60)
    assert settings.max_in_flight == 4
    assert (settings.workers, settings.threads) == (None, None)  # auto: derived from max_in_flight
    assert (settings.worker_processes, settings.worker_threads) == (3, 2) and settings.expiration_attempts == 3
    assert settings.data_dir == Path("data")
    assert settings.validation_mode == "flag"
    assert settings.start_ms == 34_200_000 and settings.end_ms == 57_600_000
    assert all(source == "default" for _, _, source in config.describe(settings))


def test_file_values_override_defaults_and_name_their_source(ini_file):
    settings = load(ini_file)
    assert settings.terminal_api == "v3"
    assert settings.roots == ("SPXW", "SPX")
    assert settings.start_date == date(2020, 1, 2)
    assert settings.data_dir == Path("/srv/spx")
    assert settings.sources["max_dte"] == f"file {ini_file}"
    assert settings.sources.get("threads") is None


def test_environment_overrides_file_and_flags_override_environment(ini_file):
    env = {"SPXDL_TERMINAL_API": "v2", "SPXDL_DOWNLOAD_MAX_DTE": "10"}
    settings = load(ini_file, env=env, flags={"max_dte": "5", "threads": 3})
    assert settings.terminal_api == "v2"
    assert settings.sources["terminal_api"] == "env SPXDL_TERMINAL_API"
    assert settings.max_dte == 5
    assert settings.sources["max_dte"] == "flag --max-dte"
    assert settings.threads == 3


def test_config_file_found_through_environment_variable(ini_file):
    settings = load(env={"SPXDL_CONFIG": str(ini_file)})
    assert settings.terminal_api == "v3"


def test_missing_explicit_config_file_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; fix the --config path"):
        load(tmp_path / "nope.ini")


def test_unknown_key_in_file_is_an_error_naming_known_keys(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[download]\nroot = SPXW\n")
    with pytest.raises(ConfigError, match=r"unknown key 'root' in \[download\]; known: roots"):
        load(path)


def test_unknown_section_is_an_error(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[downloads]\nroots = SPXW\n")
    with pytest.raises(ConfigError, match=r"unknown section \[downloads\]"):
        load(path)


def test_unparseable_file_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("roots = SPXW\n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load(path)


def test_unknown_environment_key_in_known_section_is_an_error():
    with pytest.raises(ConfigError, match="SPXDL_TERMINAL_APII is not a setting"):
        load(env={"SPXDL_TERMINAL_APII": "v2"})


def test_environment_variables_outside_the_sections_are_ignored():
    settings = load(env={"SPXDL_ENV_FILE": "/etc/spxdl.env", "SPXDL_WRAPPER_LOG": "x"})
    assert settings.terminal_api == "auto"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("SPXDL_DOWNLOAD_MAX_DTE", "sixty", "expected a whole number"),
        ("SPXDL_DOWNLOAD_ROOTS", "SPXW,../etc", "is not 1-6 letters"),
        ("SPXDL_DOWNLOAD_ROOTS", "TOOLONGX", "is not 1-6 letters"),
        ("SPXDL_DOWNLOAD_DATASETS", "greek", "unknown dataset 'greek'"),
        ("SPXDL_DOWNLOAD_INTERVAL", "7m", "expected one of"),
        ("SPXDL_DOWNLOAD_START_DATE", "2024-13-01", "expected a date as YYYY-MM-DD"),
        ("SPXDL_DOWNLOAD_RATE", "LIBOR", "expected one of: SOFR"),
        ("SPXDL_TERMINAL_URL", "127.0.0.1:25503", "expected a URL like"),
        ("SPXDL_TERMINAL_API", "v4", "expected one of: auto, v2, v3"),
        ("SPXDL_ENGINE_WORKERS", "0", "from 1 to 64"),
        ("SPXDL_VALIDATION_MODE", "strict", "expected one of: flag, drop, fail"),
    ],
)
def test_bad_values_name_key_value_and_source(key, value, message):
    with pytest.raises(ConfigError) as caught:
        load(env={key: value})
    text = str(caught.value)
    assert message in text
    assert repr(value) in text
    assert f"env {key}" in text


def test_min_dte_above_max_dte_is_refused():
    with pytest.raises(ConfigError, match="make min_dte <= max_dte"):
        load(flags={"min_dte": 10, "max_dte": 5})


def test_window_must_run_forward():
    with pytest.raises(ConfigError, match="start_time"):
        load(env={"SPXDL_DOWNLOAD_START_TIME": "16:00", "SPXDL_DOWNLOAD_END_TIME": "09:30"})


def test_window_and_url_are_normalised():
    settings = load(env={"SPXDL_DOWNLOAD_END_TIME": "16:15", "SPXDL_TERMINAL_URL": "http://127.0.0.1:25510/"})
    assert settings.end_time == time(16, 15)
    assert settings.end_ms == 58_500_000
    assert settings.terminal_url == "http://127.0.0.1:25510"


def test_workers_auto_means_the_default():
    assert load(env={"SPXDL_ENGINE_WORKERS": "auto"}).workers == config.Settings().workers is None
    assert load(env={"SPXDL_ENGINE_THREADS": "AUTO"}).threads is None
    with pytest.raises(ConfigError, match="engine.threads = 'some'.*or auto"):
        load(env={"SPXDL_ENGINE_THREADS": "some"})


@pytest.mark.parametrize("max_in_flight, workers, threads", [(1, 2, 2), (2, 2, 2), (4, 3, 2), (8, 5, 2), (16, 9, 2)])
def test_workers_and_threads_derive_from_max_in_flight(max_in_flight, workers, threads):
    # more request threads than slots, by one worker's threads: a worker writing its files or
    # between tasks leaves its slots to another's waiting threads
    settings = load(env={"SPXDL_TERMINAL_MAX_IN_FLIGHT": str(max_in_flight)})
    assert (settings.worker_processes, settings.worker_threads) == (workers, threads)
    assert settings.worker_processes * settings.worker_threads >= max_in_flight + settings.worker_threads


def test_a_worker_count_given_alone_gets_threads_enough_for_max_in_flight():
    assert load(flags={"max_in_flight": "8", "workers": "2"}).worker_threads == 5
    assert load(flags={"max_in_flight": "2", "workers": "4"}).worker_threads == 2
    given = load(flags={"max_in_flight": "8", "workers": "1", "threads": "3"})
    assert (given.worker_processes, given.worker_threads) == (1, 3)  # both given: as given
    assert load(flags={"max_in_flight": "8", "threads": "4"}).worker_processes == 3


def test_config_show_names_the_derived_counts():
    shown = dict((key, value) for key, value, _ in config.describe(load(flags={"max_in_flight": "8"})))
    assert shown["engine.workers"] == "auto (5 for max_in_flight 8)"
    assert shown["engine.threads"] == "auto (2 for max_in_flight 8)"


def test_archives_follow_datasets_and_interval():
    settings = load(flags={"datasets": "greeks,open_interest"})
    assert settings.archives() == ["greeks-1m", "open_interest"]


def test_example_ini_documents_every_key_and_loads_to_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE_INI)
    documented = {(section, key) for section in parser.sections() for key in parser[section]}
    assert documented == set(config.KEYS_BY_NAME)
    from_file = load(EXAMPLE_INI)
    assert from_file == config.Settings()


def test_compression_level_defaults_to_3_for_zstd_and_unset_for_codecs_without_levels():
    assert load().compression_level == 3
    assert load(env={"SPXDL_STORAGE_COMPRESSION": "snappy"}).compression_level is None
    with pytest.raises(ConfigError, match="does not apply to snappy"):
        load(env={"SPXDL_STORAGE_COMPRESSION": "snappy", "SPXDL_STORAGE_COMPRESSION_LEVEL": "5"})


THETADATADX_DEADLINE_SECONDS = 300  # thetadatadx-server's own per-request deadline (and its retry envelope)


def test_the_default_read_timeout_outlasts_a_server_that_answers_only_when_the_whole_chain_is_built():
    from spxdl.engine.shared import client_for

    settings = config.load(None, flags={})
    assert settings.read_timeout > THETADATADX_DEADLINE_SECONDS  # its answer, even a 503 or a 500, comes first
    with client_for(settings) as client:
        assert client.timeouts == (settings.connect_timeout, settings.read_timeout)
    assert config.load(None, flags={"read_timeout": "900"}).read_timeout == 900.0


# ------------------------------------------------------------------ data_dir as an object store, ledger_dir

SECRET = "wJalr/XUtnFEMI+K7MDENGbPxRfiCY"  # shaped like an AWS secret key: '/' and '+' in it


def test_data_dir_keeps_a_uri_as_text_and_a_path_as_a_path():
    assert config.load(env={"SPXDL_STORAGE_DATA_DIR": "s3://bucket/prefix/", "SPXDL_STORAGE_LEDGER_DIR": "/l"}
                       ).data_dir == "s3://bucket/prefix"
    assert config.load(env={"SPXDL_STORAGE_DATA_DIR": "file:///srv/spx"}).data_dir == Path("/srv/spx")
    assert config.load(env={"SPXDL_STORAGE_DATA_DIR": "/srv/spx"}).data_dir == Path("/srv/spx")


@pytest.mark.parametrize("text, reason", [("s3://", "expected a bucket"), ("s3:///prefix", "expected a bucket"),
                                          ("ftp://host/p", "not an object store spxdl knows")])
def test_an_unusable_uri_is_refused_naming_what_is_wrong(text, reason):
    with pytest.raises(ConfigError, match=reason):
        config.load(env={"SPXDL_STORAGE_DATA_DIR": text, "SPXDL_STORAGE_LEDGER_DIR": "/l"})


def test_an_object_store_needs_a_ledger_dir_and_the_message_names_the_fix():
    with pytest.raises(ConfigError, match=r"set \[storage\] ledger_dir \(or --ledger-dir") as caught:
        config.load(env={"SPXDL_STORAGE_DATA_DIR": f"s3://AKIAEXAMPLE:{SECRET}@bucket/p"})
    assert SECRET not in str(caught.value) and "AKIAEXAMPLE" not in str(caught.value)


def test_credentials_in_spxdls_own_config_file_are_refused(tmp_path):
    ini = tmp_path / "spxdl.ini"
    ini.write_text(f"[storage]\ndata_dir = s3://AKIAEXAMPLE:{SECRET}@bucket/p\nledger_dir = {tmp_path}\n")
    with pytest.raises(ConfigError, match="never reads credentials from its own files") as caught:
        config.load(ini, env={})
    assert SECRET not in str(caught.value)
    # from the environment (or a flag) they reach pyarrow, and are shown redacted
    settings = config.load(env={"SPXDL_STORAGE_DATA_DIR": f"s3://AKIAEXAMPLE:{SECRET}@bucket/p",
                                "SPXDL_STORAGE_LEDGER_DIR": str(tmp_path)})
    assert settings.data_dir_shown == "s3://***@bucket/p"
    assert all(SECRET not in value for _, value, _ in config.describe(settings))


def test_a_bad_value_is_shown_without_its_credentials():
    with pytest.raises(ConfigError) as caught:
        config.load(env={"SPXDL_STORAGE_DATA_DIR": f"ftp://AKIAEXAMPLE:{SECRET}@host/p"})
    assert SECRET not in str(caught.value) and "***@host/p" in str(caught.value)
