"""The Prometheus alert rules of `deploy/prometheus/alerts.yml` name only metrics the services really export
(issue 14): the three services run (their own wiring, real NATS, SQLite, a mail catcher), each is scraped over
HTTP, and every `ombudsdesk_*` name in every alert expression must be a series one of them declares. The scrape
configuration example points at the ports the services use by default."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.registry.settings import RegistrySettings
from tests.e2e.stack import InProcessStack, StackConfig, start_catcher
from tests.probes import probe, scrape, series_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
METRIC = re.compile(r"\bombudsdesk_[a-z0-9_]+\b")
# What the issue asks the operator to hear about, each by at least one alert naming these metrics.
REQUIRED = {
    "no parser consuming the spool": {"ombudsdesk_consumer_waiting_pulls", "ombudsdesk_intake_spool_backlog"},
    "outbox backlog growing": {"ombudsdesk_outbox_backlog"},
    "dead letters present": {"ombudsdesk_dead_letters"},
    "a consumer lagging": {"ombudsdesk_consumer_pending"},
    "a service not ready": {"ombudsdesk_ready"},
}


def alert_rules() -> list[dict]:
    document = yaml.safe_load((DEPLOY / "alerts.yml").read_text("utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


async def test_every_alert_names_only_exported_metrics(nats_server, tmp_path):
    catcher = await start_catcher(tmp_path / "outbox")
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
                         notifier_database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
                         relay_port=catcher.port)
    stack = InProcessStack(config)
    await stack.start()
    try:
        exported: set[str] = set()
        for port in (config.health_port, config.api_port, config.notifier_health_port):
            base = f"http://127.0.0.1:{port}"
            assert (await probe(base, "/ready"))[0] == 200
            exported |= series_names(await scrape(base))
    finally:
        await stack.stop()
        await catcher.stop()

    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)  # names are unique
    for rule in rules:
        named = set(METRIC.findall(rule["expr"]))
        assert named, f"{rule['alert']} names no ombudsdesk metric"
        assert named <= exported, f"{rule['alert']} names {sorted(named - exported)}, exported by no service"
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"]
    for condition, metrics in REQUIRED.items():
        assert any(metrics <= set(METRIC.findall(rule["expr"])) for rule in rules), condition


def test_the_scrape_example_points_at_the_default_probe_ports():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text("utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    # Settings read with an empty environment: the defaults a deployment starts from.
    defaults = {
        "ombudsdesk-intake": IntakeSettings.model_fields["intake_health_port"].default,
        "ombudsdesk-registry": RegistrySettings.model_fields["registry_api_port"].default,
        "ombudsdesk-notifier": NotifierSettings.model_fields["notifier_health_port"].default,
    }
    assert {job: [f"127.0.0.1:{port}"] for job, port in defaults.items()} == targets
