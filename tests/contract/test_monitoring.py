"""The Grafana dashboard and the Prometheus alert rules name only metrics the worker exports,
and docker-compose.yml mounts the files Prometheus and Grafana read."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from stream.settings import REPO_ROOT
from stream.worker.metrics import Metrics

DOCKER = REPO_ROOT / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "moodstream.json"
ALERTS = DOCKER / "prometheus" / "alerts.yml"
PROMETHEUS = DOCKER / "prometheus" / "prometheus.yml"
METRIC = re.compile(r"\bmoodstream_[a-z0-9_]+")
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created", "_info")


def exported() -> set[str]:
    """Every series name a worker's registry can produce (a Counter adds _total, a Histogram
    _bucket/_sum/_count), the consumer-lag gauge included."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_dashboard_and_alerts_name_only_exported_metrics() -> None:
    known = exported()
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    named = {m for e in exprs for m in METRIC.findall(e)}
    assert named, "no moodstream metric named at all"
    assert not named - known, f"not exported by the worker: {sorted(named - known)}"


@pytest.mark.parametrize(
    "metric",
    [
        "moodstream_events_total",  # throughput
        "moodstream_dead_letters_total",  # dead letters by kind
        "moodstream_event_to_recommendation_seconds_bucket",  # latency
        "moodstream_score_wait_seconds_total",  # model wait
        "moodstream_consumer_lag",  # consumer lag
    ],
)
def test_the_dashboard_shows_and_alerts_watch_each_signal(metric: str) -> None:
    assert any(metric in e for e in dashboard_exprs())
    assert any(metric in r["expr"] for r in alert_rules())


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_compose_mounts_what_prometheus_and_grafana_read() -> None:
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
    mounts = {
        m.split(":")[1]: REPO_ROOT / m.split(":")[0]
        for m in prometheus["volumes"] + grafana["volumes"]
        if m.startswith("./")
    }
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS
    assert mounts["/etc/prometheus/alerts.yml"] == ALERTS
    assert DASHBOARD.parent == mounts["/var/lib/grafana/dashboards"]
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    (scrape,) = config["scrape_configs"]
    (sd,) = scrape["dns_sd_configs"]
    assert set(sd["names"]) == {"worker", "worker-gpu"}
    assert sd["port"] == int(services["worker"]["environment"]["MOODSTREAM_WEB_PORT"])
    assert services["worker"]["environment"]["MOODSTREAM_WEB_HOST"] == "0.0.0.0"
    assert "ports" not in services["worker"]  # the web port is never published on the host
    provider = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "dashboards" / "moodstream.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
