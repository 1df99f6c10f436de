"""The security settings reach every Kafka client: the tools' producers, consumers and admin
clients (all made in stream.adapters.kafka) and the worker's Faust app (broker_credentials)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.kafka import faust_credentials, make_admin, make_consumer, make_producer
from stream.errors import ConfigError
from stream.settings import Settings, from_mapping

CA = str(Path(__file__).parents[2] / "fixtures" / "tls" / "test-ca.pem")  # self-signed, public


def _clients(settings: Settings) -> list[Any]:
    """The aiokafka client inside each kind of client the tools make."""
    return [
        make_producer(settings).client,
        make_consumer(settings, "t")._client,
        make_admin(settings)._client,
    ]


async def test_sasl_scram_over_tls_reaches_producer_consumer_and_admin() -> None:
    settings = from_mapping(
        {
            "broker": "kafka://b1:9093,kafka://b2:9093",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "svc-moodstream",
            "sasl_password": "s3cret",
            "ssl_cafile": CA,
        }
    )
    for client in _clients(settings):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "svc-moodstream"
        assert client._sasl_plain_password == "s3cret"
        assert isinstance(client._ssl_context, ssl.SSLContext)
        assert client._ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert "s3cret" not in repr(settings)


async def test_plaintext_stays_plaintext_and_plain_sasl_has_no_tls() -> None:
    for client in _clients(Settings()):
        assert client._security_protocol == "PLAINTEXT"
        assert client._ssl_context is None
    plain = Settings(security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p")
    for client in _clients(plain):
        assert (client._security_protocol, client._sasl_mechanism) == ("SASL_PLAINTEXT", "PLAIN")
        assert client._ssl_context is None


def test_the_worker_app_gets_the_same_credentials() -> None:
    import faust
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from stream.worker.app import _faust_app

    settings = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="worker",
        sasl_password="pw",
        ssl_cafile=CA,
    )
    app = _faust_app(settings)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)  # what Faust hands its aiokafka clients
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("worker", "pw")
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    tls = credentials_to_aiokafka_auth(faust_credentials(Settings(security_protocol="SSL")))
    assert tls["security_protocol"] == "SSL" and isinstance(tls["ssl_context"], ssl.SSLContext)
    assert _faust_app(Settings()).conf.broker_credentials is None


def test_settings_come_from_the_environment_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stream.cli import main

    monkeypatch.setenv("MOODSTREAM_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MOODSTREAM_SASL_USERNAME", "u")
    with pytest.raises(SystemExit) as exit_:
        main(["topics", "describe"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "moodstream: error: security_protocol SASL_SSL needs sasl_username and sasl_password "
        "(MOODSTREAM_SASL_USERNAME, MOODSTREAM_SASL_PASSWORD)"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"security_protocol": "TLS"}, "security_protocol must be one of"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u"},
            "sasl_mechanism must be one of",
        ),
        ({"ssl_certfile": "client.pem"}, "ssl_certfile and ssl_keyfile go together"),
    ],
)
def test_security_settings_that_cannot_work_are_refused(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(values)


def test_unreadable_tls_files_are_one_readable_error(tmp_path: Path) -> None:
    settings = Settings(security_protocol="SSL", ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="cannot load the TLS files"):
        make_producer(settings)
