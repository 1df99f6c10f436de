"""The one place that makes Kafka clients: every producer, consumer and admin client of the
project's tools comes from here, built from the settings' broker address and security options
(SASL PLAIN/SCRAM, TLS), so a managed Kafka needs its options set once, in the settings."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from stream.contract.topics import TopicSpec, partition_problems, worker_topics
from stream.errors import BrokerError, ConfigError
from stream.settings import Settings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient
    from faust.types.auth import CredentialsT

_TOPIC_EXISTS = 36  # Kafka's TOPIC_ALREADY_EXISTS: another client created it first


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092,kafka://h2:9092`` or ``h1:9092;h2:9092`` -> ``h1:9092,h2:9092``."""
    hosts = [h.strip() for h in broker_url.replace(";", ",").split(",") if h.strip()]
    if not hosts:
        raise ConfigError("broker URL is empty")
    return ",".join(h.removeprefix("kafka://").rstrip("/") for h in hosts)


def _servers(target: Settings | str) -> str:
    return bootstrap_servers(target.broker if isinstance(target, Settings) else target)


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (CA bundle, optional client certificate)."""
    if "SSL" not in settings.security_protocol:
        return None
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS files: {exc}") from None
    return context


def security_options(target: Settings | str) -> dict[str, Any]:
    """The aiokafka keyword arguments for the settings' security protocol."""
    if not isinstance(target, Settings) or target.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": target.security_protocol}
    context = ssl_context(target)
    if context is not None:
        options["ssl_context"] = context
    if target.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=target.sasl_mechanism,
            sasl_plain_username=target.sasl_username,
            sasl_plain_password=target.sasl_password,
        )
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The same security options in Faust's terms (``broker_credentials``)."""
    import faust

    if settings.security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if settings.security_protocol == "SSL":
        assert context is not None
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password,
        ssl_context=context,
        mechanism=settings.sasl_mechanism,
    )


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and the Java client)
    gives a keyed record: where a table keyed by ``key`` keeps it."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def make_producer(target: Settings | str, **options: Any) -> AIOKafkaProducer:
    """A producer for the settings' broker (or a bootstrap string); not started."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=_servers(target), **security_options(target), **options
    )


def make_consumer(target: Settings | str, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer for the settings' broker; not started. No group unless ``group_id`` is given."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        *topics, bootstrap_servers=_servers(target), **security_options(target), **options
    )


def make_admin(target: Settings | str, **options: Any) -> AIOKafkaAdminClient:
    """An admin client for the settings' broker; not started."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(
        bootstrap_servers=_servers(target), **security_options(target), **options
    )


class _Startable(Protocol):
    async def start(self) -> None: ...


async def connect(client: _Startable, target: Settings | str) -> None:
    """Start a client within the settings' ``connect_timeout_s``; a broker that cannot be reached
    (down, wrong address, refused credentials) becomes one ``BrokerError`` line."""
    from aiokafka.errors import KafkaError

    timeout = target.connect_timeout_s if isinstance(target, Settings) else 10.0
    try:
        await asyncio.wait_for(client.start(), timeout)
    except (KafkaError, OSError, TimeoutError) as exc:
        await _close(client)
        secured = isinstance(target, Settings) and target.security_protocol != "PLAINTEXT"
        raise BrokerError(
            f"cannot reach the Kafka broker at {_servers(target)} "
            f"({_reason(exc, timeout, secured)}); is it running, and is --broker / "
            "MOODSTREAM_BROKER right?"
        ) from None


def _reason(exc: BaseException, timeout: float, secured: bool) -> str:
    from aiokafka.errors import KafkaConnectionError

    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, KafkaConnectionError) and "bootstrap" in str(exc):
        if secured:  # aiokafka reports a refused login like a refused connection
            return "connection or authentication failed: check the --sasl-* and --ssl-* settings"
        return "connection failed"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _close(client: Any) -> None:
    closer = getattr(client, "close", None) or getattr(client, "stop", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()


async def partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Every topic's partition count. Asks for all topics: a metadata request naming a missing
    topic would let a broker with auto-creation on create it with its default count."""
    return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(None)}


async def topic_partitions(target: Settings | str) -> dict[str, int]:
    """Every topic's partition count, from a short-lived admin client."""
    admin = make_admin(target)
    await connect(admin, target)
    try:
        return await partition_counts(admin)
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: int) -> None:
    from aiokafka.admin import NewTopic

    topics = [
        NewTopic(s.name, s.partitions, replication, topic_configs=dict(s.config) or None)
        for s in specs
    ]
    response = await admin.create_topics(topics)
    for entry in getattr(response, "topic_errors", []):
        name, code = entry[0], entry[1]
        if code not in (0, _TOPIC_EXISTS):
            detail = entry[2] if len(entry) > 2 and entry[2] else f"error code {code}"
            raise BrokerError(f"cannot create topic {name}: {detail}")


async def ensure_topics(
    target: Settings | str, names: Iterable[str], partitions: int, replication: int = 1
) -> list[str]:
    """Create the named topics that do not exist yet (inputs must share the worker's partition
    count: co-partitioning); returns the names created."""
    admin = make_admin(target)
    await connect(admin, target)
    try:
        existing = await partition_counts(admin)
        wanted = sorted(set(names) - set(existing))
        if wanted:
            await _create(admin, [TopicSpec(n, partitions, "input") for n in wanted], replication)
        return wanted
    finally:
        await admin.close()


async def prepare_worker_topics(settings: Settings, *, create: bool | None = None) -> list[str]:
    """Before Faust starts: refuse topics whose partition counts break co-partitioning, then
    create the missing ones (or, where the worker may not create topics, refuse to start without
    them). Returns the names created."""
    create = settings.allow_topic_creation if create is None else create
    specs = worker_topics(settings)
    admin = make_admin(settings)
    await connect(admin, settings)
    try:
        existing = await partition_counts(admin)
        problems = partition_problems(specs, existing, settings)
        if problems:
            more = f" (and {len(problems) - 1} more topic(s) like it)" if len(problems) > 1 else ""
            raise ConfigError(problems[0] + more)
        missing = [s for s in specs if s.name not in existing]
        if missing and not create:
            names = ", ".join(s.name for s in missing)
            raise ConfigError(
                f"missing topic(s) {names}; this worker may not create topics "
                "(--allow-topic-creation false): create them with `moodstream topics create` "
                "using the same --app-id, --topic-prefix and --partitions"
            )
        if missing:
            await _create(admin, missing, settings.replication)
        return [s.name for s in missing]
    finally:
        await admin.close()


def describe_rows(
    specs: list[TopicSpec], existing: Mapping[str, int]
) -> list[tuple[str, str, int, int | None]]:
    """(name, role, wanted partitions, actual partitions or None) for ``topics describe``."""
    return [(s.name, s.role, s.partitions, existing.get(s.name)) for s in specs]
