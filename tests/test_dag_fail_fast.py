"""The sync DAGs' tasks fail at once on errors no retry can cure, and retry the others.

The operators route their errors through ``failures.fail_fast``; the reconcile, leads and two-way
DAGs' TaskFlow tasks do the same through ``failures.failing_fast``: a mapping error, a bad DAG
param, a connection that is not usable, a request HighLevel rejects as invalid, a missing scope or
a location the token may not access fails the task on its first try (an ``AirflowFailException``),
while a timeout, a 5xx or 429 after the hook's retries, or a dropped database connection is
retried. The DAGs run here with their default 2 retries (1 s apart instead of 30 s), so a retry
would show as ``try_number`` 2 or 3.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow.sdk.exceptions import AirflowFailException
from airflow_provider_contacts.errors import (
    GHLAuthError,
    GHLConfigError,
    GHLDailyLimitError,
    GHLLocationAccessError,
    GHLNotFoundError,
    GHLRateLimitError,
    GHLScopeError,
    GHLServerError,
    GHLTransportError,
    GHLValidationError,
)
from airflow_provider_contacts.failures import SYNC_KINDS, failing_fast, is_retryable
from airflow_provider_contacts.sync.mapping import MappingError

REPO_ROOT = Path(__file__).resolve().parent.parent
FAST_RETRIES = {"retry_delay": timedelta(seconds=1)}  # the DAGs' own retries=2, without 30 s waits


# -- the classification --------------------------------------------------------------------------
PERMANENT = [
    MappingError("contacts.columns.email.source: unknown field 'emial' for contacts; did you mean 'email'?"),
    GHLConfigError("connection 'ghl_default' has no token"),
    GHLValidationError("DAG param 'location_ids': '../etc' is not a HighLevel location id"),
    GHLValidationError("Unprocessable Entity", status=422),
    GHLScopeError("The token is not authorized for this scope.", status=401, scope="contacts.readonly"),
    GHLLocationAccessError("The token does not have access to this location.", status=403),
    GHLAuthError("Forbidden", status=403),
]
TRANSIENT = [
    GHLServerError("Bad Gateway", status=502),
    GHLTransportError("timed out reading the response"),
    GHLRateLimitError("Too Many Requests", status=429),
    GHLDailyLimitError("the daily request limit is spent"),
    GHLAuthError("Invalid JWT", status=401),  # an OAuth refresh raced another worker
    sqlite3.OperationalError("database is locked"),
    ConnectionResetError("server closed the connection unexpectedly"),
    GHLNotFoundError("Contact not found", status=404),  # deleted while the run read it: gone on the retry
]


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_configuration_and_permission_errors_fail_a_sync_task_at_once(error: BaseException) -> None:
    assert not is_retryable(error, SYNC_KINDS)
    with pytest.raises(AirflowFailException) as caught:
        with failing_fast("ghl_contacts_reconcile.reconcile", ghl_conn_id="ghl_default", location_id="locA"):
            raise error
    assert isinstance(caught.value, type(error))  # `except MappingError` still catches it
    assert caught.value.__cause__ is error
    text = str(caught.value)
    assert text.startswith(f"ghl_contacts_reconcile.reconcile: {type(error).__name__}: ")
    # Config and mapping errors name the field and the fix themselves: no second "fix" restating it.
    assert (" - fix: " in text) is not isinstance(error, (GHLConfigError, MappingError)) and "Not retried" in text


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: f"{type(e).__name__}-{getattr(e, 'status', '')}")
def test_transient_errors_are_left_to_airflows_retries(error: BaseException) -> None:
    assert is_retryable(error, SYNC_KINDS)
    with pytest.raises(type(error)) as caught:
        with failing_fast("ghl_contacts_reconcile.reconcile", ghl_conn_id="ghl_default", location_id="locA"):
            raise error
    assert caught.value is error and not isinstance(caught.value, AirflowFailException)


def test_the_fix_names_dag_params_not_operator_arguments() -> None:
    with pytest.raises(AirflowFailException) as caught:
        with failing_fast("d.reconcile", ghl_conn_id="ghl_default", location_id="NoSuchLocation0000001"):
            raise GHLLocationAccessError("The token does not have access to this location.", status=403)
    text = str(caught.value)
    assert "location 'NoSuchLocation0000001'" in text and "location_ids" in text and "'ghl_default'" in text


# -- location_ids ------------------------------------------------------------------------------------
def test_location_ids_entries_must_be_highlevel_ids() -> None:
    from airflow_provider_contacts.sync.dag import check_location_ids

    check_location_ids(["sx6wyHhbFdRXh302LLNR", "loc_2-b"])
    check_location_ids(None)
    with pytest.raises(GHLValidationError) as caught:
        check_location_ids(["../etc", "NoSuchLocation0000001", "a/b"])
    text = str(caught.value)
    assert "DAG param 'location_ids'" in text and "'../etc'" in text and "'a/b'" in text
    assert "NoSuchLocation0000001" not in text  # well-formed: HighLevel tells whether it exists
    assert "correct or remove them in location_ids" in text


def test_a_bad_location_ids_default_is_refused_when_the_dag_is_built() -> None:
    from airflow_provider_contacts.sync.dag import build_reconcile_dag

    with pytest.raises(ValueError, match=r"location_ids.*'\.\./etc'"):
        build_reconcile_dag("ghl_bad_default", params={"location_ids": ["../etc"]})


# -- the DAGs, run with dag.test() -------------------------------------------------------------------
def _tis(run: Any) -> dict[str, tuple[str, int]]:
    """``task[map index]`` -> (state, try number) of each task instance of ``run``."""
    return {f"{ti.task_id}[{ti.map_index}]": (str(ti.state), ti.try_number) for ti in run.get_task_instances()}


@pytest.fixture
def alerts() -> list[str]:
    return []


def _collector(alerts: list[str]) -> Callable[[Mapping[str, Any]], None]:
    from airflow_provider_contacts.sync.alerts import alert_text

    def collect(context: Mapping[str, Any]) -> None:
        alerts.append(alert_text(context))

    return collect


@pytest.fixture
def misspelt_mapping(tmp_path: Path) -> Path:
    """A copy of dags/ghl_contacts_mapping.yaml with ``source: emial`` (a new user's typo)."""
    text = (REPO_ROOT / "dags" / "ghl_contacts_mapping.yaml").read_text(encoding="utf-8")
    assert "{source: email, transform: email}" in text
    path = tmp_path / "ghl_contacts_mapping.yaml"
    path.write_text(text.replace("{source: email, transform: email}", "{source: emial, transform: email}", 1), encoding="utf-8")
    return path


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_FF_TARGET", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "t.sqlite")}))
    return "ff_target"


def test_a_mapping_error_fails_the_reconcile_on_its_first_try(
    airflow_db: Path, misspelt_mapping: Path, target: str, alerts: list[str]
) -> None:
    from airflow_provider_contacts.sync.dag import DEFAULT_DAG_ID, build_reconcile_dag

    dag = build_reconcile_dag(DEFAULT_DAG_ID, mapping=misspelt_mapping, notifiers=[_collector(alerts)],
                              default_args=FAST_RETRIES)
    assert dag.task_dict["reconcile"].retries == 2
    run = dag.test(run_conf={"location_ids": ["locA"], "target_conn_id": target})
    tis = _tis(run)
    assert str(run.state) == "failed", tis
    assert tis["resolve_locations[-1]"] == ("success", 1)
    assert tis["reconcile[0]"] == ("failed", 1)  # not up_for_retry: no retry can fix a mapping
    assert tis["publish_report[-1]"][0] == "upstream_failed"
    assert len(alerts) == 1
    assert "MappingError" in alerts[0] and "'emial'" in alerts[0] and "did you mean 'email'?" in alerts[0]
    assert "Not retried" in alerts[0] and "(try 1)" in alerts[0]


def test_a_malformed_location_id_fails_resolve_locations_at_once(
    airflow_db: Path, target: str, alerts: list[str]
) -> None:
    from airflow_provider_contacts.sync.dag import DEFAULT_DAG_ID, build_reconcile_dag

    dag = build_reconcile_dag(DEFAULT_DAG_ID, notifiers=[_collector(alerts)], default_args=FAST_RETRIES)
    run = dag.test(run_conf={"location_ids": ["../etc", "NoSuchLocation0000001"], "target_conn_id": target})
    tis = _tis(run)
    assert str(run.state) == "failed", tis
    assert tis["resolve_locations[-1]"] == ("failed", 1)
    assert len(alerts) == 1
    assert "DAG param 'location_ids'" in alerts[0] and "'../etc'" in alerts[0] and "correct or remove it" in alerts[0]


def test_a_location_the_token_cannot_access_fails_alone_and_at_once(
    airflow_db: Path, sandbox: Any, ghl_conn: str, target: str, alerts: list[str]
) -> None:
    """Two locations, two mapped tasks: the unknown one fails on its first try, the other syncs."""
    from airflow_provider_contacts.sync.dag import DEFAULT_DAG_ID, build_reconcile_dag

    sandbox.admin.reset(contacts=5)
    dag = build_reconcile_dag(DEFAULT_DAG_ID, notifiers=[_collector(alerts)], default_args=FAST_RETRIES)
    run = dag.test(run_conf={"location_ids": [sandbox.location_id, "NoSuchLocation0000001"], "target_conn_id": target})
    tis = _tis(run)
    assert tis["reconcile[0]"] == ("success", 1), tis
    assert tis["reconcile[1]"] == ("failed", 1), tis
    assert len(alerts) == 1
    assert "reconcile[1] location NoSuchLocation0000001" in alerts[0]
    assert "GHLLocationAccessError" in alerts[0] and "Not retried" in alerts[0]
    assert sandbox.token not in alerts[0]


def test_a_transient_error_is_still_retried(
    airflow_db: Path, target: str, alerts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_contacts.sync import runner
    from airflow_provider_contacts.sync.dag import DEFAULT_DAG_ID, build_reconcile_dag

    calls: list[str] = []

    def unavailable(**kwargs: Any) -> Any:
        calls.append(kwargs["location_id"])
        raise GHLServerError("Service Unavailable", status=503, operation="search-contacts-advanced")

    monkeypatch.setattr(runner, "run_reconcile", unavailable)
    dag = build_reconcile_dag(DEFAULT_DAG_ID, notifiers=[_collector(alerts)], default_args=FAST_RETRIES)
    run = dag.test(run_conf={"location_ids": ["locA"], "target_conn_id": target})
    tis = _tis(run)
    assert tis["reconcile[0]"] == ("failed", 3), tis  # the first try and both retries
    assert calls == ["locA"] * 3
    assert len(alerts) == 1 and "GHLServerError" in alerts[0] and "Not retried" not in alerts[0]


# -- the leads DAG ---------------------------------------------------------------------------------
@pytest.fixture
def misspelt_leads_mapping(tmp_path: Path) -> Path:
    from airflow_provider_contacts.sync.leads.dag import DEFAULT_LEADS_MAPPING_FILE

    text = DEFAULT_LEADS_MAPPING_FILE.read_text(encoding="utf-8")
    assert "    first_name: firstName\n" in text and "    first_name: newest\n" in text
    text = text.replace("    first_name: firstName\n", "    first_nam: firstName\n", 1)
    text = text.replace("    first_name: newest\n", "    first_nam: newest\n", 1)  # (two_way names mapped columns)
    path = tmp_path / "leads_mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def lead_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from airflow_provider_contacts.sync.leads.source import create_demo_leads

    path = tmp_path / "crm.sqlite"
    create_demo_leads(path)
    monkeypatch.setenv("AIRFLOW_CONN_FF_CRM", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    yield "ff_crm"


def test_a_lead_column_the_table_lacks_is_a_mapping_error_with_a_did_you_mean(
    misspelt_leads_mapping: Path, lead_table: str
) -> None:
    from airflow_provider_contacts.sync.leads.mapping import LeadMapping
    from airflow_provider_contacts.sync.leads.source import LeadSource, get_source_hook

    mapping = LeadMapping.load(misspelt_leads_mapping)
    with LeadSource(get_source_hook(lead_table)) as source:
        with pytest.raises(MappingError) as caught:
            source.check_columns(mapping.lead_columns)
        with pytest.raises(MappingError, match=r"\['first_nam', 'zzz'\]; did you mean 'first_name' for 'first_nam'\?"):
            source.check_columns(["first_nam", "zzz"])
    text = str(caught.value)
    assert "lead table 'crm_leads' has no column(s) ['first_nam']; did you mean 'first_name'?" in text
    assert not is_retryable(caught.value, SYNC_KINDS)


def test_a_missing_lead_table_is_a_configuration_error(lead_table: str) -> None:
    from airflow_provider_contacts.sync.leads.source import LeadSource, get_source_hook

    with LeadSource(get_source_hook(lead_table), "no_such_leads") as source:
        with pytest.raises(GHLConfigError, match="set the leads_table param"):
            source.columns()


def test_the_leads_dag_fails_at_once_on_a_bad_lead_mapping(
    airflow_db: Path, sandbox: Any, ghl_conn: str, misspelt_leads_mapping: Path, lead_table: str,
    alerts: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_contacts.sync import alerts as alerts_module
    from airflow_provider_contacts.sync.leads.dag import DEFAULT_LEADS_DAG_ID, build_leads_dag

    dag = build_leads_dag(DEFAULT_LEADS_DAG_ID, mapping=misspelt_leads_mapping,
                          default_args={**FAST_RETRIES, "on_failure_callback": _collector(alerts)})
    assert dag.task_dict["leads_to_contacts"].retries == 2
    run = dag.test(run_conf={"crm_conn_id": lead_table})
    tis = _tis(run)
    assert tis["leads_to_contacts[-1]"] == ("failed", 1), tis
    assert len(alerts) == 1
    text = alerts[0]
    assert text.startswith(f"{alerts_module.ALERT_PREFIX}: {DEFAULT_LEADS_DAG_ID}.leads_to_contacts ")
    assert "reconcile" not in text  # the leads DAG's alert does not call itself a reconcile
    assert "MappingError" in text and "did you mean 'first_name'?" in text and "Not retried" in text


def test_the_leads_dag_refuses_a_malformed_location_id(
    airflow_db: Path, lead_table: str, alerts: list[str]
) -> None:
    from airflow_provider_contacts.sync.leads.dag import DEFAULT_LEADS_DAG_ID, build_leads_dag

    dag = build_leads_dag(DEFAULT_LEADS_DAG_ID, default_args={**FAST_RETRIES, "on_failure_callback": _collector(alerts)})
    run = dag.test(run_conf={"crm_conn_id": lead_table, "location_id": "../etc"})
    assert _tis(run)["leads_to_contacts[-1]"] == ("failed", 1)
    assert "DAG param 'location_id'" in alerts[0] and "'../etc'" in alerts[0]


def test_the_two_way_dag_fails_at_once_on_a_bad_lead_mapping(
    airflow_db: Path, sandbox: Any, ghl_conn: str, misspelt_leads_mapping: Path, lead_table: str,
    target: str, alerts: list[str],
) -> None:
    from airflow_provider_contacts.sync.leads.dag import DEFAULT_TWO_WAY_DAG_ID, build_two_way_dag

    sandbox.admin.reset(contacts=3)
    dag = build_two_way_dag(DEFAULT_TWO_WAY_DAG_ID, mapping=misspelt_leads_mapping,
                            default_args={**FAST_RETRIES, "on_failure_callback": _collector(alerts)})
    run = dag.test(run_conf={"crm_conn_id": lead_table, "target_conn_id": target})
    tis = _tis(run)
    assert tis["reconcile[-1]"] == ("success", 1), tis
    assert tis["sync_both_ways[-1]"] == ("failed", 1), tis
    assert len(alerts) == 1 and f"{DEFAULT_TWO_WAY_DAG_ID}.sync_both_ways" in alerts[0]
    assert "MappingError" in alerts[0] and "did you mean 'first_name'?" in alerts[0]


def test_a_connection_that_does_not_exist_fails_at_once() -> None:
    """A connection id no connection source knows: retrying finds it missing again."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from airflow_provider_contacts.failures import fail_fast, is_retryable

    missing = AirflowNotFoundException("The conn_id `no_such_target` isn't defined")
    assert not is_retryable(missing)
    replacement = fail_fast(missing)
    assert replacement is not None and "no_such_target" in str(replacement)


def test_a_connection_without_location_and_no_location_ids_is_a_config_error(monkeypatch) -> None:
    import json

    from airflow_provider_contacts.errors import GHLConfigError
    from airflow_provider_contacts.failures import is_retryable
    from airflow_provider_contacts.sync.locations import plan_locations

    monkeypatch.setenv("AIRFLOW_CONN_GHL_NO_LOCATION", json.dumps({"conn_type": "ghl", "host": "http://127.0.0.1:9",
                                                                   "password": "pit-token-value"}))
    with pytest.raises(GHLConfigError, match="no extra 'location_id'") as err:
        plan_locations({"source_conn_id": "ghl_no_location", "location_ids": None}, mapping_path="unused.yaml")
    assert not is_retryable(err.value)
