"""A real Apache Kafka 4.x broker (KRaft, one combined broker+controller node) run as a subprocess.

The tests, ``make demo`` and ``moodstream broker`` need the wire behaviour of real Kafka (end
offsets, idempotent and transactional producers, ``offsets_for_times``, auto-created topics), so
the project runs the real thing: Maven fetches the jars named by ``kafka/pom.xml`` once into
``.kafka/lib``, then ``java -cp '.kafka/lib/*' kafka.Kafka server.properties`` starts a broker,
exactly what the Kafka distribution's scripts do. Users with Docker run the same version from
``docker-compose.yml``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from stream.errors import BrokerError, MissingToolError
from stream.settings import REPO_ROOT

log = logging.getLogger(__name__)

KAFKA_DIR = REPO_ROOT / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
CACHE_DIR = REPO_ROOT / ".kafka"
NODE_ID = 1
MIN_JAVA = 17

JAVA_HINT = "install a Java 17+ runtime, e.g. `apt-get install openjdk-17-jre-headless`"
MAVEN_HINT = "install Maven to fetch the Kafka jars once, e.g. `apt-get install maven`"


@dataclass(frozen=True)
class BrokerAddress:
    """Where clients reach a broker: ``bootstrap`` for aiokafka, ``url`` for Faust settings."""

    host: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> BrokerAddress:
        """Accept ``host:port`` or ``kafka://host:port`` (the first of a comma list)."""
        first = text.strip().split(",")[0].removeprefix("kafka://").strip()
        host, sep, port = first.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise BrokerError(f"not a broker address (want host:port or kafka://...): {text!r}")
        return cls(host, int(port))


# --- tools and jars ---------------------------------------------------------------------------


def find_tool(name: str, hint: str) -> str:
    """Absolute path of ``name`` on PATH, or MissingToolError saying what to install."""
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"`{name}` not found on PATH: {hint}")
    return path


def java_major(java: str) -> int:
    """The feature release of ``java`` (17 for "17.0.15"); Kafka 4 refuses anything below 17."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise MissingToolError(f"cannot tell the version of {java}: {JAVA_HINT}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" means Java 8


def check_java() -> str:
    """Path of a ``java`` that can run Kafka 4 (Java 17+), or MissingToolError."""
    java = find_tool("java", JAVA_HINT)
    major = java_major(java)
    if major < MIN_JAVA:
        raise MissingToolError(
            f"Kafka 4 needs Java {MIN_JAVA}+ but {java} is Java {major}: " + JAVA_HINT
        )
    return java


def kafka_version(pom: Path = POM) -> str:
    """The pinned ``kafka.version`` property of ``kafka/pom.xml`` (the one place it is set)."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"cannot read the Kafka pin in {pom}: {exc}") from exc
    node = root.find(
        "{http://maven.apache.org/POM/4.0.0}properties/"
        "{http://maven.apache.org/POM/4.0.0}kafka.version"
    )
    if node is None or not (node.text or "").strip():
        raise BrokerError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


def _jar_stamp(pom: Path) -> str:
    """Marker content: the version plus a hash of the pom, so any pom edit refetches."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    return f"kafka={kafka_version(pom)} pom={digest}\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise jar fetches between processes (a test run and `moodstream broker`, say)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_jars(
    pom: Path = POM, cache_dir: Path = CACHE_DIR, echo: Callable[[str], None] = log.info
) -> Path:
    """Return ``<cache_dir>/lib`` holding every broker jar, running Maven only when it is stale.

    The jars are copied into a scratch folder and renamed into place with a marker file last, so
    an interrupted fetch is never mistaken for a complete one.
    """
    lib = cache_dir / "lib"
    marker = lib / ".complete"
    stamp = _jar_stamp(pom)
    if marker.is_file() and marker.read_text() == stamp:
        return lib
    with _locked(cache_dir / "lib.lock"):
        if marker.is_file() and marker.read_text() == stamp:
            return lib
        mvn = find_tool("mvn", MAVEN_HINT)
        version = kafka_version(pom)
        scratch = Path(tempfile.mkdtemp(prefix="lib.", dir=cache_dir))
        echo(f"fetching the Apache Kafka {version} jars with Maven into {lib} (once) ...")
        started = time.monotonic()
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-Dkafka.lib.dir={scratch}",
        ]
        try:
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            except subprocess.TimeoutExpired as exc:
                raise BrokerError("Maven did not fetch the Kafka jars within 30 minutes") from exc
            if done.returncode != 0:
                tail = _tail_text(done.stdout + done.stderr, 15)
                raise BrokerError(
                    f"Maven could not fetch the Kafka {version} jars "
                    f"(exit {done.returncode}):\n{tail}"
                )
            needed = [f"kafka_2.13-{version}.jar", f"kafka-clients-{version}.jar"]
            missing = [name for name in needed if not (scratch / name).is_file()]
            if missing or not list(scratch.glob("log4j-core-*.jar")):
                raise BrokerError(f"Maven finished but {scratch} lacks {missing or 'log4j-core'}")
            (scratch / ".complete").write_text(stamp)
            shutil.rmtree(lib, ignore_errors=True)
            scratch.rename(lib)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        echo(f"fetched {len(list(lib.glob('*.jar')))} jars in {time.monotonic() - started:.1f}s")
    return lib


# --- configuration --------------------------------------------------------------------------


def server_properties(
    host: str,
    port: int,
    controller_port: int,
    log_dir: Path,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The broker's ``server.properties``: one combined KRaft node tuned for a laptop or CI box.

    Replication factors are 1 (there is one node), there is no initial rebalance delay (tests and
    demos join groups constantly), and internal topics get few partitions so the first consumer
    group and the first transaction do not wait for 50 partitions to be created.
    """
    props = {
        "node.id": str(NODE_ID),
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        # Kafka 4.x dynamic quorum (KIP-853): formatted with `--standalone`.
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",  # only the worker and `topics create` make topics
        "delete.topic.enable": "true",
        "log.retention.check.interval.ms": "10000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    props.update(overrides or {})
    return props


def render_properties(props: Mapping[str, str]) -> str:
    lines = ["# written by stream/broker.py; edits are overwritten at the next start"]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    while True:
        candidate = secrets.token_urlsafe(16)
        if not candidate.startswith("-"):  # a leading dash would read as a flag to StorageTool
            return candidate


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does: a port whose old connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


# --- the wire -------------------------------------------------------------------------------


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[int]:
    """Node ids listed by a Metadata v4 request (the oldest version Kafka 4.x still serves).

    A raw request keeps readiness checks synchronous and silent: no event loop, no client logging
    connection errors while the broker boots. The broker lists itself only once it has registered
    with its controller and its data plane accepts requests.
    """
    client_id = b"moodstream-ready"
    header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id
    body = struct.pack(">ib", 0, 0)  # no topics, do not auto-create
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        payload = _recv_exact(sock, size)
    # correlation id, throttle_time_ms, then the brokers array
    _correlation, _throttle, count = struct.unpack_from(">iii", payload, 0)
    offset, nodes = 12, []
    for _ in range(count):
        (node_id,) = struct.unpack_from(">i", payload, offset)
        offset += 4
        (host_len,) = struct.unpack_from(">h", payload, offset)
        offset += 2 + host_len + 4  # host bytes, port
        (rack_len,) = struct.unpack_from(">h", payload, offset)
        offset += 2 + max(rack_len, 0)
        nodes.append(node_id)
    return nodes


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _tail_file(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            return _tail_text(handle.read().decode("utf-8", "replace"), lines)
    except OSError:
        return ""


# --- the broker process ---------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: have Linux send SIGTERM when the parent dies, so no broker is orphaned."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class KafkaBroker:
    """One Kafka node on loopback: ``with KafkaBroker() as broker: broker.url``.

    ``port=0`` picks free ports. Without ``data_dir`` the broker lives in a temporary folder that
    is deleted on a clean stop; with it, topics survive restarts (the folder is formatted once).
    ``console`` receives the JVM's stdout/stderr (log4j WARN+ and JVM errors); ``None`` writes it
    to ``<work dir>/logs/console.log``. The full INFO log is ``<work dir>/logs/server.log``.
    """

    def __init__(
        self,
        port: int = 0,
        controller_port: int = 0,
        data_dir: Path | str | None = None,
        host: str = "127.0.0.1",
        heap: str = "512m",
        overrides: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
        stop_timeout: float = 30.0,
        cache_dir: Path = CACHE_DIR,
        pom: Path = POM,
        console: int | None = None,
        echo: Callable[[str], None] = log.info,
        class_data_sharing: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.overrides = dict(overrides or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.cache_dir = Path(cache_dir)
        self.pom = Path(pom)
        self.console = console
        self.echo = echo
        self._persistent = data_dir is not None
        self.work_dir: Path | None = Path(data_dir).resolve() if data_dir is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = ""
        self.start_seconds: float | None = None
        self.class_data_sharing = class_data_sharing
        self._console_handle: BinaryIO | None = None
        self._pending_archives: list[tuple[Path, Path]] = []

    # -- public surface

    @property
    def address(self) -> BrokerAddress:
        if not self.port:
            raise BrokerError("the broker has no port before start()")
        return BrokerAddress(self.host, self.port)

    @property
    def bootstrap(self) -> str:
        return self.address.bootstrap

    @property
    def url(self) -> str:
        return self.address.url

    @property
    def server_log(self) -> Path:
        return self._work / "logs" / "server.log"

    def start(self) -> KafkaBroker:
        """Fetch jars if needed, format storage once, launch, and wait for a metadata answer."""
        if self.proc is not None:
            raise BrokerError("this broker is already started")
        try:
            self._start()
        except BaseException:
            self.stop()  # nothing half-started outlives a failed start
            raise
        return self

    def _start(self) -> None:
        self._choose_ports()
        java = check_java()
        self.version = kafka_version(self.pom)
        lib = ensure_jars(self.pom, self.cache_dir, self.echo)
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="moodstream-kafka-"))
        started = time.monotonic()
        (self._work / "logs").mkdir(parents=True, exist_ok=True)
        props_path = self._work / "server.properties"
        props = server_properties(
            self.host, self.port, self.controller_port, self._work / "data", self.overrides
        )
        props_path.write_text(render_properties(props))
        if not (self._work / "data" / "meta.properties").is_file():
            self._format(java, lib, props_path)
        self._await_ready(self._launch(java, lib, props_path))
        self.start_seconds = time.monotonic() - started
        self.echo(
            f"Apache Kafka {self.version} ready at {self.bootstrap} "
            f"in {self.start_seconds:.1f}s (logs: {self.server_log})"
        )

    def stop(self) -> None:
        """SIGTERM the process group (Kafka shuts down cleanly), SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        # Keep the logs of a broker that died on its own: they are the only explanation.
        clean = proc is None or proc.poll() is None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                clean = False
                log.warning("Kafka did not stop within %.0fs; killing it", self.stop_timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self._adopt_archives(exited_cleanly=clean)
        if self._console_handle is not None:
            self._console_handle.close()
            self._console_handle = None
        # A temporary work dir goes only after a good run: after a failed start, its logs explain.
        ran = self.start_seconds is not None
        if clean and ran and not self._persistent and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def wait(self) -> int:
        """Block until the broker exits on its own; its exit code."""
        if self.proc is None:
            raise BrokerError("the broker is not running")
        return self.proc.wait()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals

    @property
    def _work(self) -> Path:
        if self.work_dir is None:
            raise BrokerError("the broker has no work dir before start()")
        return self.work_dir

    def _choose_ports(self) -> None:
        for name in ("port", "controller_port"):
            chosen = getattr(self, name)
            if chosen == 0:
                chosen = free_port(self.host)
                while chosen in (self.port, self.controller_port):
                    chosen = free_port(self.host)
                setattr(self, name, chosen)
            elif port_in_use(self.host, chosen):
                flag = "--port" if name == "port" else "--controller-port"
                raise BrokerError(
                    f"{self.host}:{chosen} is already in use: stop what listens "
                    f"there or pass another {flag} (0 picks a free one)"
                )
        if self.port == self.controller_port:
            raise BrokerError("the broker and controller ports must differ")

    def _jvm(self, java: str, lib: Path, heap: str, name: str) -> list[str]:
        return [
            java,
            *self._class_data_sharing(java, lib, name),
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self._work / 'logs'}",
            "-cp",
            f"{lib}/*",
        ]

    def _class_data_sharing(self, java: str, lib: Path, name: str) -> list[str]:
        """AppCDS, as the official Kafka image does: ~1 s less JVM start-up per process.

        The first run dumps the classes it loaded into a scratch archive at exit; later runs map
        it. The archive lives beside the jars, so a refetch of the jars discards it with them.
        """
        if not self.class_data_sharing:
            return []
        # An archive only fits the JVM build that wrote it: key it to the java binary.
        binary = os.stat(os.path.realpath(java))
        jvm = hashlib.sha256(
            f"{os.path.realpath(java)}:{binary.st_size}:{binary.st_mtime_ns}".encode()
        ).hexdigest()[:10]
        archive = lib / f"{name}-{jvm}.jsa"
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}"]
        scratch = lib / f"{name}.{os.getpid()}.{secrets.token_hex(4)}.jsa.tmp"
        self._pending_archives.append((scratch, archive))
        return [f"-XX:ArchiveClassesAtExit={scratch}"]

    def _adopt_archives(self, exited_cleanly: bool) -> None:
        """After a JVM exited: move its dumped archive into place (atomic; first one wins).

        A JVM that was killed may have left half an archive: that one is dropped.
        """
        for scratch, archive in self._pending_archives:
            usable = exited_cleanly and scratch.is_file() and scratch.stat().st_size > 0
            if usable and not archive.exists():
                os.replace(scratch, archive)
            scratch.unlink(missing_ok=True)
        self._pending_archives.clear()

    def _format(self, java: str, lib: Path, props_path: Path) -> None:
        cmd = [
            *self._jvm(java, lib, "256m", "storage"),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            random_cluster_id(),
            "-c",
            str(props_path),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired as exc:
            self._adopt_archives(exited_cleanly=False)
            raise BrokerError("formatting Kafka storage took over 5 minutes") from exc
        self._adopt_archives(exited_cleanly=done.returncode == 0)
        if done.returncode != 0:
            tail = _tail_text(done.stdout + done.stderr, 15)
            raise BrokerError(
                f"formatting Kafka storage in {self._work / 'data'} failed "
                f"(exit {done.returncode}):\n{tail}"
            )

    def _launch(self, java: str, lib: Path, props_path: Path) -> subprocess.Popen[bytes]:
        cmd = [*self._jvm(java, lib, self.heap, "kafka"), "kafka.Kafka", str(props_path)]
        out: int | BinaryIO
        if self.console is None:
            out = self._console_handle = (self._work / "logs" / "console.log").open("ab")
        else:
            out = self.console
        in_main_thread = threading.current_thread() is threading.main_thread()
        self.proc = proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self._work,
            start_new_session=True,
            # PDEATHSIG fires when the spawning *thread* ends: only safe from the main thread.
            preexec_fn=_die_with_parent if in_main_thread else None,
        )
        return proc

    def _await_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise BrokerError(
                    f"Kafka exited with code {code} while starting on "
                    f"{self.bootstrap}{self.log_excerpt()}"
                )
            with contextlib.suppress(OSError, struct.error):
                if NODE_ID in metadata_brokers(self.host, self.port, timeout=2.0):
                    return
            if time.monotonic() > deadline:
                excerpt = self.log_excerpt()
                raise BrokerError(
                    f"Kafka did not answer a metadata request on {self.bootstrap} "
                    f"within {self.start_timeout:.0f}s{excerpt}"
                )
            time.sleep(0.1)

    def log_excerpt(self) -> str:
        """The last lines of the console and server logs, for error messages."""
        parts = []
        for path in (self._work / "logs" / "console.log", self.server_log):
            tail = _tail_file(path, 15)
            if tail:
                parts.append(f"\n--- last lines of {path} ---\n{tail}")
        return "".join(parts) or f"\n(no log lines in {self._work / 'logs'})"


def main(argv: list[str] | None = None) -> int:
    """Check Java and fetch the jars once (`make test` and `make demo` run this first)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m stream.devtools.broker", description=main.__doc__
    )
    parser.add_argument("--fetch-only", action="store_true", help="fetch the jars and exit")
    args = parser.parse_args(argv)
    if not args.fetch_only:
        parser.error("to run a broker use `moodstream broker`; this entry point only fetches")
    try:
        check_java()
        lib = ensure_jars(echo=print)
    except (BrokerError, MissingToolError) as exc:
        print(f"moodstream: error: {exc}", file=sys.stderr)
        return 2
    print(f"Apache Kafka {kafka_version()} jars ready in {lib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
