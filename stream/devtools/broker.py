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
import hashlib
import logging
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from stream.devtools.kafka_config import random_cluster_id, render_properties, server_properties
from stream.devtools.kafka_jars import (
    CACHE_DIR,
    LOG4J_CONFIG,
    NODE_ID,
    POM,
    check_java,
    ensure_jars,
    kafka_version,
    tail_text,
)
from stream.devtools.kafka_net import BrokerAddress, free_port, metadata_brokers, port_in_use
from stream.errors import BrokerError, MissingToolError

log = logging.getLogger(__name__)

__all__ = [
    "BrokerAddress",
    "KafkaBroker",
    "free_port",
    "kafka_version",
    "main",
    "metadata_brokers",
]


def _tail_file(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            return tail_text(handle.read().decode("utf-8", "replace"), lines)
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
            tail = tail_text(done.stdout + done.stderr, 15)
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
