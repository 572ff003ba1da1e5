"""`make ui` as a data engineer opens it: its webserver, as `boxoffice ui` starts it, on the session's Dagster
instance (in PostgreSQL), read through the webserver's GraphQL API (what the UI draws) and drawn by headless
Chromium. Screenshots of the asset graph and of a run go to docs/screenshots/. Runs last: it reads the session's
runs."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from boxoffice import cli
from boxoffice.settings import PROJECT_DIR
from orchestration import pipeline

CHROMIUM = shutil.which("chromium")
SCREENSHOTS = PROJECT_DIR / "docs" / "screenshots"
QUERY = """{
  assetNodes { assetKey { path } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name scheduleState { status } }
    sensors { name sensorState { status } }
  } } }
  runsOrError(filter: {pipelineName: "boxoffice_build"}) { ... on Runs { results { runId status } } }
}"""


@pytest.fixture(scope="module")
def ui(runs, settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pipeline.prepare_dagster_home(settings)  # what `boxoffice ui` does before it starts dagster dev
    # the webserver of `make ui` without its daemon: the schedules' and sensors' states are the UI's to show, and a
    # daemon would start running them (the Mollie sensor fires at once) while the session ends
    webserver = os.path.join(os.path.dirname(cli.dagster_command()), "dagster-webserver")
    command = [webserver, "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=cli.dagster_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # stopped with whatever it starts
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert process.poll() is None, "boxoffice ui exited"
            assert time.monotonic() < deadline, "the Dagster UI did not answer within 120 s"
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok and graphql(url)["assetNodes"]:
                    break
            except (requests.RequestException, KeyError, TypeError):
                pass
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def graphql(url: str) -> dict:
    return requests.post(f"{url}/graphql", json={"query": QUERY}, timeout=30).json()["data"]


def screenshot(url: str, name: str) -> bytes:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1600,1000"]
    subprocess.run(
        [*browser, "--virtual-time-budget=20000", f"--screenshot={path}", url],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return path.read_bytes()


def test_the_ui_shows_every_layer_and_runs_the_schedules_and_sensors(ui):
    data = graphql(ui)
    assets = {"/".join(a["assetKey"]["path"]) for a in data["assetNodes"]}
    for layer in (
        "raw/platform_orders",  # the extract
        "raw/mollie_settlements",
        "staging/stg_platform__orders",  # dbt
        "marts/fct_accounting_journal",
        "reports/reconciliation_reports",  # the reports
        "monitoring/alert_notifications",  # the alerts
        "dashboards/metabase",  # the analysts' dashboards
    ):
        assert layer in assets, layer
    (repository,) = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert len(schedules) == 4 and set(schedules.values()) == {"RUNNING"}, schedules
    assert {"mollie_settlements", "notify_failed_runs", "build_what_the_load_changed"} <= set(sensors)
    assert set(sensors.values()) == {"RUNNING"}, sensors


def test_screenshots_of_the_asset_graph_and_of_a_run(ui):
    assert CHROMIUM, "Debian's chromium is missing: `make browser` (part of `make test`) installs it"
    first_build = graphql(ui)["runsOrError"]["results"][-1]  # the session's first: every model, check and report
    assert first_build["status"] == "SUCCESS"
    graph = screenshot(f"{ui}/asset-groups", "dagster_asset_graph.png")
    page = screenshot(f"{ui}/runs/{first_build['runId']}", "dagster_run.png")
    assert len(graph) > 20_000 and len(page) > 20_000  # drawn pages, not a blank or an error screen
