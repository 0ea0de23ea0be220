"""What a user sees of a reconciliation run while it runs and after it: progress lines with the
search's total and a time-left estimate, a heartbeat between batches, the run report as a small
table in XCom and as asset event extras (``sync.progress``, ``sync.report``, ``sync.dag``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

# At import (collection) time: Airflow configures logging when first imported, which must happen
# before pytest's caplog handler is installed.
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink, SyncConfig
from airflow_provider_contacts.sync.progress import ProgressReporter
from airflow_provider_contacts.sync.report import REPORT_ROW_FIELDS, RunReport, report_rows, summarize_rows
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

ENGINE_LOGGER = "airflow_provider_contacts.sync.engine"
MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"


def _progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress ")]


# -- progress: the search total and the time left ------------------------------------------------
def test_the_contacts_phase_counts_against_the_search_total_and_estimates_time_left(
    sandbox: Any, ghl_conn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.admin.reset(contacts=25)
    mapping = FieldMapping.load(MAPPING_FILE)
    config = SyncConfig(page_limit=10, batch_size=10, progress_interval_s=0)  # 3 search pages, a line per batch
    hook = ContactsHook()
    with caplog.at_level(logging.INFO, logger=ENGINE_LOGGER), \
            SqlSink(EmbeddedSqliteHook(tmp_path / "t.sqlite"), mapping) as sink:
        ReconcileEngine(hook, sink, mapping, config).run()
        first = _progress_lines(caplog)
        caplog.clear()
        ReconcileEngine(hook, sink, mapping, config).run()  # incremental: the id scan has a total too
        second = _progress_lines(caplog)
    hook.close()
    contacts = [line for line in first if "phase=contacts " in line]
    assert "done=0/unknown" in contacts[0] and contacts[0].endswith("eta=unknown")  # before the first page
    assert any("done=10/25 contacts=10 " in line for line in contacts)
    assert any("done=25/25 contacts=25 " in line for line in contacts)
    # Time left: contacts left x (notes request + shares of a search page and a task search page) at
    # the limiter's rate; with 15 left at most 2 s, never unknown once the total is known.
    mid = next(line for line in contacts if "done=10/25" in line)
    assert "limit=" in mid and "eta=unknown" not in mid and "requests=" in mid and "rate=" in mid
    assert any("phase=deletion scan done=25/25" in line for line in second)
    assert all(sandbox.token not in line for line in first + second)


def test_a_heartbeat_line_comes_while_a_batch_is_in_flight_and_stops_with_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    requests = [0]
    reporter = ProgressReporter(logging.getLogger("test.heartbeat"), requests=lambda: requests[0],
                                rate_limit=lambda: 10.0, interval_s=0.2, label="location=L1")
    with caplog.at_level(logging.INFO, logger="test.heartbeat"):
        with reporter:
            reporter.phase("contacts", per_record=1.0)
            reporter.set_total(400)  # the search's first page came back
            for _ in range(5):  # one long batch: requests go out, no tick for 0.75 s
                time.sleep(0.15)
                requests[0] += 3
            reporter.tick(200, {"contacts": 200})
        stopped_at = len(caplog.records)
        time.sleep(0.45)
    lines = [r.getMessage() for r in caplog.records]
    beats = [line for line in lines[1:] if "done=0/400" in line]
    assert len(beats) >= 2, lines  # lines kept coming during the batch, with the requests so far
    assert "eta=40s" in beats[0] and "limit=10.0/s" in beats[0]
    assert len(caplog.records) == stopped_at  # nothing after stop()
    assert not [t for t in threading.enumerate() if t.name == "ghl-progress"]


def test_a_hook_without_single_page_search_leaves_the_total_unknown() -> None:
    from airflow_provider_contacts.sync.extract import Extractor

    class StreamOnly:
        def iter_search_contacts(self, filters: Any = None, sort: Any = None, page_limit: int = 500) -> Any:
            yield {"id": "c1", "dateUpdated": "2025-01-01T00:00:00.000Z"}

    totals: list[int] = []
    assert [c["id"] for c in Extractor(StreamOnly()).contacts_updated_since(None, on_total=totals.append)] == ["c1"]
    assert totals == []


# -- the run report as a small table -----------------------------------------------------------
def _big_report(location: str, scale: int) -> RunReport:
    """A report whose texts grow with ``scale`` (warnings, examples, custom fields)."""
    report = RunReport(location_id=location, target="warehouse (postgresql)", mode="full",
                       requests=12 * scale, throttled=scale, duration_s=3.14159 * scale)
    report.counts("contacts").add(inserted=10 * scale, updated=scale, unchanged=2, quarantined=3)
    report.counts("notes").add(deleted=scale, rejected=1)
    for n in range(scale):
        report.column_error("contacts", f"cf_field_{n}", f"c{n}: {'x' * 200}")
        report.warnings.append(f"warning {n}: " + "y" * 300)
        report.custom_fields.added.append(f"cf_{n} ('Field {n}', TEXT -> text)")
    return report


def test_report_rows_are_three_flat_rows_whose_size_does_not_grow_with_the_data() -> None:
    small, big = _big_report("loc1", 1), _big_report("loc1", 1500)
    rows = report_rows(big)
    assert [r["table"] for r in rows] == ["ghl_contacts", "ghl_tasks", "ghl_notes"]
    assert all(list(r) == list(REPORT_ROW_FIELDS) for r in rows)
    assert all(isinstance(v, (str, int, float, type(None))) for r in rows for v in r.values())  # flat
    contacts, _, notes = rows
    assert contacts["upserted"] == 16500 and contacts["quarantined"] == 3 and contacts["column_errors"] == 1500
    assert notes["deleted"] == 1500 and notes["rejected"] == 1
    assert contacts["requests"] == 18000 and contacts["warnings"] == 1500 and contacts["duration_s"] == 4712.4
    assert report_rows(big.to_dict()) == rows  # from XCom's or the state's dict form too
    size = len(json.dumps(rows))
    assert len(json.dumps(big.to_dict())) > 500_000 and size < 2000
    assert abs(size - len(json.dumps(report_rows(small)))) < 60  # only the digits of the counts differ
    huge_id = report_rows(RunReport(location_id="L" * 10_000, target="t" * 10_000))
    assert len(json.dumps(huge_id)) < 2000


def test_rows_of_several_locations_sum_per_table_and_fill_the_asset_extras() -> None:
    from airflow_provider_contacts.sync.dag import asset_extra

    rows = report_rows(_big_report("loc1", 2)) + report_rows(_big_report("loc2", 3))
    summary = summarize_rows(rows)
    assert summary["locations"] == ["loc1", "loc2"]
    assert summary["requests"] == 60 and summary["throttled"] == 5  # once per location, not per row
    assert summary["warning_count"] == 5 and summary["warnings_by_location"] == {"loc1": 2, "loc2": 3}
    assert summary["tables"]["ghl_contacts"]["upserted"] == 55 and summary["tables"]["ghl_notes"]["deleted"] == 5
    extra = asset_extra(summary, rows, "ghl_contacts")
    assert extra["inserted"] == 50 and extra["column_errors"] == 5 and extra["locations"] == ["loc1", "loc2"]
    assert extra["per_location"] == {
        "loc1": {"upserted": 22, "deleted": 0, "quarantined": 3, "column_errors": 2},
        "loc2": {"upserted": 33, "deleted": 0, "quarantined": 3, "column_errors": 3},
    }
    assert extra["target"] == "warehouse (postgresql)"
    json.dumps(extra)  # an asset event extra is JSON
    empty = summarize_rows([])
    assert asset_extra(empty, [], "ghl_tasks")["upserted"] == 0 and empty["locations"] == []


# -- under dag.test(): XCom and asset events ------------------------------------------------------
def _xcom(run_id: str, task_id: str, map_index: int = -1) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.execute(
            select(XComModel.value).where(
                XComModel.run_id == run_id, XComModel.task_id == task_id,
                XComModel.map_index == map_index, XComModel.key == "return_value",
            )
        ).scalar_one()
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _asset_extras(run_id: str) -> dict[str, dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run_id)
        ).all()
    return {name: extra for name, extra in rows}


def test_under_dag_test_xcom_holds_the_small_table_and_each_asset_event_its_counts(
    airflow_db: Path, sandbox: Any, ghl_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_contacts.sync.dag import DEFAULT_DAG_ID, build_reconcile_dag

    sandbox.admin.reset(contacts=40)
    truth = sandbox.admin.dump()
    monkeypatch.setenv("AIRFLOW_CONN_OBS_TARGET", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "o.sqlite")}))
    # dag.test() serializes the DAG of that id from the dags folder (dags/ghl_contacts_reconcile.py,
    # the same builder) and runs this object's tasks.
    dag = build_reconcile_dag(DEFAULT_DAG_ID, default_args={"retries": 0})
    run = dag.test(run_conf={"target_conn_id": "obs_target"})
    assert str(run.state) == "success"

    rows = _xcom(run.run_id, "reconcile", 0)
    assert isinstance(rows, list) and [r["table"] for r in rows] == ["ghl_contacts", "ghl_tasks", "ghl_notes"]
    assert all(r["location_id"] == sandbox.location_id and r["mode"] == "full" for r in rows)
    assert all(isinstance(v, (str, int, float, type(None))) for r in rows for v in r.values())
    assert rows[0]["upserted"] == rows[0]["inserted"] == len(truth["contacts"])
    assert rows[1]["upserted"] == len(truth["tasks"]) and rows[2]["upserted"] == len(truth["notes"])
    assert rows[0]["requests"] > 0 and rows[0]["duration_s"] >= 0
    assert len(json.dumps(rows)) < 2000  # 40 contacts or 40,000: the same three rows

    summary = _xcom(run.run_id, "publish_report")
    assert summary["locations"] == [sandbox.location_id]
    assert summary["tables"]["ghl_contacts"]["upserted"] == len(truth["contacts"])

    extras = _asset_extras(run.run_id)
    assert set(extras) == {"ghl_contacts", "ghl_tasks", "ghl_notes"}
    for table, row in zip(("ghl_contacts", "ghl_tasks", "ghl_notes"), rows):
        extra = extras[table]
        assert {k: extra[k] for k in ("upserted", "deleted", "quarantined", "column_errors")} == {
            k: row[k] for k in ("upserted", "deleted", "quarantined", "column_errors")
        }
        assert extra["locations"] == [sandbox.location_id]
        assert extra["per_location"][sandbox.location_id]["upserted"] == row["upserted"]
        assert "obs_target" in extra["target"]
