"""The broker's tools and jars without a broker: Java checks, the jar cache, the pinned version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stream.devtools import kafka_jars as kj
from stream.devtools.broker import KafkaBroker
from stream.errors import BrokerError, MissingToolError


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only what a test puts into it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def _script(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_missing_java_is_one_line_saying_what_to_install(bare_path: Path) -> None:
    with pytest.raises(MissingToolError) as caught:
        KafkaBroker().start()
    message = str(caught.value)
    assert "\n" not in message
    assert "`java` not found" in message and "install" in message and "17" in message


def test_old_java_is_refused(bare_path: Path) -> None:
    _script(bare_path, "java", "echo 'openjdk version \"11.0.22\" 2024-01-16' >&2")
    with pytest.raises(MissingToolError, match=r"needs Java 17\+ but .* is Java 11"):
        KafkaBroker().start()


def test_java_8_version_string_reads_as_8(bare_path: Path) -> None:
    _script(bare_path, "java", "echo 'java version \"1.8.0_392\"' >&2")
    assert kj.java_major(str(bare_path / "java")) == 8


def test_missing_maven_is_reported_only_when_jars_must_be_fetched(
    bare_path: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(MissingToolError) as caught:
        kj.ensure_jars(kj.POM, cache)
    assert "\n" not in str(caught.value)
    assert "`mvn` not found" in str(caught.value) and "install" in str(caught.value)

    # A complete cache (marker matching the pom) needs no Maven at all.
    lib = cache / "lib"
    lib.mkdir(parents=True)
    (lib / ".complete").write_text(kj._jar_stamp(kj.POM))
    assert kj.ensure_jars(kj.POM, cache) == lib


def test_any_pom_edit_invalidates_the_jar_cache(bare_path: Path, tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    shutil.copy(kj.POM, pom)
    cache = tmp_path / "cache"
    (cache / "lib").mkdir(parents=True)
    (cache / "lib" / ".complete").write_text(kj._jar_stamp(pom))
    pom.write_text(pom.read_text().replace("<version>1</version>", "<version>2</version>", 1))
    with pytest.raises(MissingToolError, match="mvn"):
        kj.ensure_jars(pom, cache)


def test_pinned_version_is_kafka_4() -> None:
    major, minor, patch = kj.kafka_version().split(".")
    assert major == "4" and minor.isdigit() and patch.isdigit()


def test_a_pom_without_the_pin_is_an_error(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><properties/></project>')
    with pytest.raises(BrokerError, match=r"<kafka\.version>"):
        kj.kafka_version(pom)
