"""Configuration: references, overrides, and start-up errors that say what is wrong."""
from __future__ import annotations

import pytest

from gateway.config import load_settings, settings_from_mapping
from gateway.errors import ConfigError
from tests.conftest import SECRET_KEY

ACCOUNT = {"id": "sandbox", "plugin": "mock", "settings": {"secret": "env:SANDBOX_SECRET"}}


def test_env_and_file_references_are_resolved(tmp_path) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text("from-a-file-0123456789\n")
    raw = {"secret_key": f"file:{key_file}", "channel_accounts": [ACCOUNT]}
    settings = settings_from_mapping(raw, {"SANDBOX_SECRET": "s3cret-value"})
    assert settings.secret_key == "from-a-file-0123456789"
    assert settings.account("sandbox").settings == {"secret": "s3cret-value"}


def test_a_missing_environment_variable_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"channel_accounts\[0\]\.settings\.secret .*SANDBOX_SECRET"):
        settings_from_mapping({"channel_accounts": [ACCOUNT]}, {})


def test_an_unreadable_file_reference_is_named(tmp_path) -> None:
    account = {**ACCOUNT, "settings": {"secret": f"file:{tmp_path}/missing.pem"}}
    with pytest.raises(ConfigError, match="missing.pem"):
        settings_from_mapping({"channel_accounts": [account]}, {})


def test_environment_overrides_database_url_secret_key_and_public_url(tmp_path) -> None:
    config = tmp_path / "paymux.toml"
    config.write_text('public_url = "http://a:1"\nsecret_key = "from-config-0123456789"\n'
                      '[database]\nurl = "sqlite:///a.db"\n')
    env = {"PAYMUX_DATABASE_URL": "postgresql://x@y/z", "PAYMUX_SECRET_KEY": "from-env-0123456789",
           "PAYMUX_PUBLIC_URL": "https://pay.example.com"}
    settings = load_settings(config, env)
    assert (settings.database_url, settings.secret_key, settings.public_url) == (
        "postgresql://x@y/z", "from-env-0123456789", "https://pay.example.com")
    assert load_settings(config, {}).database_url == "sqlite:///a.db"


def test_paymux_config_points_at_another_file(tmp_path) -> None:
    config = tmp_path / "other.toml"
    config.write_text('public_url = "http://elsewhere:9"\n')
    assert load_settings(None, {"PAYMUX_CONFIG": str(config)}).public_url == "http://elsewhere:9"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(None, {"PAYMUX_CONFIG": str(tmp_path / "nope.toml")})


def test_invalid_toml_is_reported(tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("public_url = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, {})


def test_account_ids_must_be_unique_and_url_safe() -> None:
    with pytest.raises(ConfigError, match="used twice"):
        settings_from_mapping({"channel_accounts": [{"id": "a", "plugin": "mock"}, {"id": "a", "plugin": "mock"}]}, {})
    with pytest.raises(ConfigError, match="letters, digits"):
        settings_from_mapping({"channel_accounts": [{"id": "a/b", "plugin": "mock"}]}, {})


def _app(raw: dict) -> None:
    from gateway.app import create_app

    create_app(settings_from_mapping({"secret_key": SECRET_KEY, "database": {"url": "sqlite://"}, **raw}, {}))


def test_an_unknown_plugin_fails_at_start_up_saying_which() -> None:
    with pytest.raises(ConfigError, match="'shop' names plugin 'nosuchpay', which is not installed"):
        _app({"channel_accounts": [{"id": "shop", "plugin": "nosuchpay"}]})


def test_bad_plugin_settings_fail_at_start_up_naming_the_account() -> None:
    account = {"id": "sandbox", "plugin": "mock", "settings": {"secret": "long-enough", "callback_mode": "weird"}}
    with pytest.raises(ConfigError, match="'sandbox' \\(mock\\): callback_mode"):
        _app({"channel_accounts": [account]})


def test_a_missing_secret_key_tells_how_to_make_one() -> None:
    from gateway.app import create_app

    settings = settings_from_mapping({"secret_key": "file:/nonexistent/secret.key"}, {})
    with pytest.raises(ConfigError, match="paymux init"):
        create_app(settings)


def test_the_embedded_default_config_loads() -> None:
    settings = load_settings(None, {})      # no environment needed: the CLI works in any terminal
    assert settings.database_url.startswith("sqlite:///")
    assert [(a.id, a.plugin, a.enabled) for a in settings.channel_accounts] == [("sandbox", "mock", True)]


@pytest.mark.parametrize(("database", "error"), [
    ({"threads": 0}, "threads must be a whole number from 1 to 256"),
    ({"threads": "8"}, "threads must be a whole number from 1 to 256"),
    ({"threads": True}, "threads must be a whole number from 1 to 256"),
    ({"pool": 4}, r"\[database\]: unknown key\(s\) pool"),
])
def test_database_settings_are_checked(database: dict, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        settings_from_mapping({"database": {"url": "sqlite:///a.db", **database}}, {})


def test_database_threads_size_the_pool_of_database_threads(tmp_path) -> None:
    from gateway.db import Database

    settings = settings_from_mapping({"database": {"url": "postgresql://x@127.0.0.1:1/none", "threads": 3}}, {})
    db = Database(settings.database_url, settings.database_threads)   # no connection is made until used
    try:
        assert db._executor._max_workers == 3
    finally:
        db.dispose()
    assert settings_from_mapping({}, {}).database_threads is None   # not configured: the host's default


def test_the_processes_of_serve_workers_share_the_default_database_threads(tmp_path, monkeypatch) -> None:
    """Not configured, a host's 8 database threads are shared by `serve --workers N`'s processes (at
    least 2 each); configured, each process has as many as configured."""
    from gateway.cli import server
    from gateway.config import database_threads_for

    unset = settings_from_mapping({}, {})
    assert [database_threads_for(unset, n) for n in (1, 2, 4, 8)] == [8, 4, 2, 2]
    assert database_threads_for(settings_from_mapping({"database": {"threads": 6}}, {}), 4) == 6
    config = tmp_path / "paymux.toml"
    config.write_text('[database]\nurl = "postgresql://x@127.0.0.1:1/none"\n')
    built = []
    monkeypatch.setattr(server, "create_app", built.append)
    monkeypatch.setenv("PAYMUX_CONFIG", str(config))
    monkeypatch.setenv(server.SERVE_PROCESSES, "2")
    server.worker_app()
    assert built[-1].database_threads == 4
