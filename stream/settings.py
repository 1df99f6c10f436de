"""One frozen settings object, built at the edge (CLI flags falling back to ``MOODSTREAM_*`` env).

Nothing below the CLI reads the environment: every component receives a ``Settings``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from stream.errors import ConfigError

ENV_PREFIX = "MOODSTREAM_"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "moodstream-minilm-v1"


def _opt(default: Any, help: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Everything a worker, replay or CLI command may be configured with."""

    broker: str = _opt("kafka://localhost:9092", "Kafka bootstrap URL(s), comma separated")
    app_id: str = _opt("moodstream", "Faust app id (consumer group, changelog topic prefix)")
    topic_prefix: str = _opt("", "prefix put before every topic name (tests, shadow workers)")
    partitions: int = _opt(4, "partitions of the input topics and tables")
    replication: int = _opt(1, "replication factor for topics the app creates")
    store: str = _opt("memory://", "table store: memory:// or rocksdb://")
    data_dir: str = _opt(".moodstream/worker", "worker data directory (RocksDB tables)")
    web_port: int = _opt(6066, "port of the metrics/health web endpoint")
    web_host: str = _opt(
        "127.0.0.1", "address the web endpoint binds (127.0.0.1: this machine only; 0.0.0.0: all)"
    )
    allow_topic_creation: bool = _opt(
        True,
        "the worker creates the topics it needs; false: it only checks them (create them with "
        "`moodstream topics create`)",
    )
    connect_timeout_s: float = _opt(10.0, "give up reaching the broker after this many seconds")
    security_protocol: str = _opt(
        "PLAINTEXT", "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: str = _opt("PLAIN", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    sasl_username: str = _opt("", "SASL user name")
    sasl_password: str = _opt("", "SASL password (prefer the environment variable)", secret=True)
    ssl_cafile: str = _opt("", "CA bundle (PEM) to verify the brokers (empty: system CAs)")
    ssl_certfile: str = _opt("", "client certificate (PEM) for mutual TLS")
    ssl_keyfile: str = _opt("", "client private key (PEM) for mutual TLS")
    model_dir: str = _opt(str(DEFAULT_MODEL_DIR), "folder of the shipped ONNX model + card")
    model_variant: str = _opt("auto", "auto, int8 (CPU) or fp16 (GPU)")
    providers: str = _opt("auto", "ONNX Runtime providers: auto or a comma list")
    intra_op_threads: int = _opt(
        0,
        "ONNX Runtime intra-op threads (0 = auto: a worker's scoring threads share all cores "
        "but one, which its event loop keeps)",
    )
    score_threads: int = _opt(2, "pieces of a batch a worker scores at once, one thread each")
    index_dir: str = _opt("", "item index folder (empty = build/cache the demo index)")
    batch_size: int = _opt(32, "largest micro-batch of texts scored at once")
    batch_events: int = _opt(256, "most events the worker takes from the topics at once")
    batch_wait_ms: int = _opt(20, "longest wait to fill a micro-batch")
    linger_ms: int = _opt(5, "producer linger: wait this long to batch outgoing messages")
    max_text_bytes: int = _opt(8192, "texts longer than this (UTF-8 bytes) are dead-lettered")
    max_value_bytes: int = _opt(65536, "raw topic values larger than this are dead-lettered")
    dedup_window_s: int = _opt(86400, "event ids are remembered this long to drop duplicates")
    half_life_review_s: float = _opt(7 * 86400.0, "emotion half-life of review evidence")
    half_life_chat_s: float = _opt(3600.0, "emotion half-life of chat evidence")
    half_life_click_s: float = _opt(1800.0, "emotion half-life of click evidence")
    taste_half_life_s: float = _opt(30 * 86400.0, "half-life of the taste vector")
    affect_half_life_s: float = _opt(90 * 86400.0, "half-life of item affect")
    popularity_half_life_s: float = _opt(7 * 86400.0, "half-life of item popularity")
    top_k: int = _opt(10, "items per recommendation")
    candidates: int = _opt(100, "FAISS candidates fetched before re-ranking")
    recommend_interval_ms: int = _opt(250, "at most one recommendation per user per interval")
    ranker: str = _opt("default", "ranker variant (see stream.core.rank)")
    log_level: str = _opt("info", "log level")
    instance_id: str = _opt(
        "",
        "static group membership: a restarted worker with the same id takes its partitions "
        "back at once instead of after the session timeout (unique per worker; empty = off)",
    )
    item_flush_ms: int = _opt(
        500,
        "the user-events agent sends each item's aggregated deltas at most this often, and "
        "writes the user records and acknowledges the events they came from only then "
        "(0 = after every piece: more item messages, lower throughput; README 'Scale-out')",
    )
    session_timeout_s: float = _opt(
        60.0, "Kafka session timeout: how long a silent worker keeps its partitions"
    )

    def topic(self, name: str) -> str:
        """Full topic name, e.g. ``topic("reviews")`` -> ``moodstream.reviews.v1``."""
        return f"{self.topic_prefix}moodstream.{name}.v1"

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated like the original."""
        return dataclasses.replace(self, **changes)


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


_T = TypeVar("_T")


def _coerce(kind: Callable[[str], _T], raw: str, name: str) -> _T:
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{env_name(name)}={raw!r} is not a valid {kind.__name__}") from exc


def parse_bool(raw: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case)."""
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


parse_bool.__name__ = "bool"


def from_mapping(values: Mapping[str, Any]) -> Settings:
    """Build settings from explicit values (None = unset; the CLI fills them from flags, then
    ``MOODSTREAM_*`` env), then defaults."""
    chosen: dict[str, Any] = {}
    types: dict[str, Callable[[str], Any]] = {
        "int": int,
        "float": float,
        "str": str,
        "bool": parse_bool,
    }
    for f in fields(Settings):
        kind = types[str(f.type)]
        value = values.get(f.name)
        if value is None:
            continue
        chosen[f.name] = _coerce(kind, str(value), f.name) if isinstance(value, str) else value
    return Settings(**chosen)


def validate(settings: Settings) -> None:
    if settings.partitions < 1:
        raise ConfigError("partitions must be >= 1")
    if settings.replication < 1:
        raise ConfigError("replication must be >= 1")
    if settings.connect_timeout_s <= 0:
        raise ConfigError("connect_timeout_s must be > 0")
    if settings.security_protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(
            f"security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}, "
            f"not {settings.security_protocol!r}"
        )
    if settings.security_protocol.startswith("SASL"):
        if settings.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}, "
                f"not {settings.sasl_mechanism!r}"
            )
        if not settings.sasl_username or not settings.sasl_password:
            raise ConfigError(
                f"security_protocol {settings.security_protocol} needs sasl_username and "
                "sasl_password (MOODSTREAM_SASL_USERNAME, MOODSTREAM_SASL_PASSWORD)"
            )
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise ConfigError("ssl_certfile and ssl_keyfile go together (mutual TLS)")
    if settings.batch_size < 1:
        raise ConfigError("batch_size must be >= 1")
    if settings.batch_events < 1:
        raise ConfigError("batch_events must be >= 1")
    if settings.score_threads < 1:
        raise ConfigError("score_threads must be >= 1")
    if settings.item_flush_ms < 0:
        raise ConfigError("item_flush_ms must be >= 0")
    if settings.linger_ms < 0:
        raise ConfigError("linger_ms must be >= 0")
    if not settings.store.startswith(("memory://", "rocksdb://")):
        raise ConfigError(f"store must be memory:// or rocksdb://, not {settings.store!r}")
    if settings.model_variant not in {"auto", "int8", "fp16", "fp32"}:
        raise ConfigError("model_variant must be auto, int8, fp16 or fp32")
    if settings.top_k < 1 or settings.candidates < settings.top_k:
        raise ConfigError("need 1 <= top_k <= candidates")
    from stream.core.rank import VARIANTS

    if settings.ranker not in VARIANTS:
        raise ConfigError(f"ranker must be one of {', '.join(VARIANTS)}, not {settings.ranker!r}")
