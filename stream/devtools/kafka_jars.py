"""The Kafka broker's tools and jars: Java found and checked, Maven run once to fetch the jars
named by ``kafka/pom.xml`` into ``.kafka/lib`` (re-fetched when the pom changes)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

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
                tail = tail_text(done.stdout + done.stderr, 15)
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


def tail_text(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])
