"""Reliability suite (issue #14 item 9): the reconciliation and the hook's writes under the failures
production brings, each scenario ending with the same checks:

* the target equals the sandbox (``support.verify.diff_target`` against ``SandboxServer.truth()``),
  no row lost, no id twice in a table;
* no HighLevel record created twice, none lost (every create through the hook exactly once);
* no refresh token used twice (the sandbox counts every reuse, ``admin.oauth_stats()``);
* no token in any log (this process's records, captured stdout/stderr, the children's output), in
  the XCom value of a run (its report) or in an operator's XCom value and template fields.

Scenarios (``support.chaos``, also run repeatedly by
``benchmarks/soak_reliability.py``):

a. 15 % of all requests faulted (500/502/503/504, delays, dropped answers, applied-then-lost), plus
   15 % of the other writes applied-then-lost, during a reconcile and during creates of contacts,
   tasks and notes through the hook;
b. ``kill -9`` of reconcile child processes at request counts drawn from a seeded RNG, then a rerun;
c. two reconciles of one location into one target at the same moment (SQLite; PostgreSQL too
   when ``GHL_TEST_POSTGRES_URL`` is set);
d. OAuth access tokens expiring every 2 s during a reconcile that shares its connection (and its
   single-use refresh tokens) with another process.

Child processes are forked from one preloaded worker process (``chaos.ReconcileWorkers``), started
with the module so its imports overlap the first scenario.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import chaos
from ghl_sandbox.testing import SandboxServer, token_leaks

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"

#: Contacts in the location of each scenario (small: the suite runs on every submission).
CONTACTS = 40


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chaos.ReconcileWorkers]:
    """The reconcile worker zygote (started at once; its first use waits until it is ready)."""
    with chaos.ReconcileWorkers(tmp_path_factory.mktemp("workers")) as started:
        yield started


@pytest.fixture
def location(sandbox: SandboxServer) -> SandboxServer:
    """The shared sandbox reset to a small seeded location."""
    sandbox.admin.reset(contacts=CONTACTS)
    return sandbox


@pytest.fixture
def sqlite_target(tmp_path: Path) -> chaos.TargetSpec:
    return chaos.TargetSpec(path=str(tmp_path / "target.sqlite"))


def assert_clean(result: chaos.ScenarioResult) -> None:
    """Every invariant of the module docstring holds."""
    assert result.ok, f"{result.name}: " + "; ".join(result.problems())
    assert result.diffs == [] and result.rows_lost == 0 and result.duplicates == 0 and result.records_lost == 0
    assert result.reused_refresh_tokens == 0 and result.token_leaks == 0 and result.failed_calls == 0


def assert_no_leak_in_this_process(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
                                   *texts: str) -> None:
    out, err = capfd.readouterr()
    for name, text in (("log records", caplog.text), ("stdout", out), ("stderr", err),
                       *((f"value {i}", t) for i, t in enumerate(texts))):
        assert token_leaks(text) == [], f"a token in {name}"


def test_a_faults_during_a_reconcile_and_hook_writes_lose_and_duplicate_nothing(
    location: SandboxServer, sqlite_target: chaos.TargetSpec, workers: chaos.ReconcileWorkers,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    result = chaos.faults_scenario(location, sqlite_target, MAPPING_FILE, tag=f"t{uuid.uuid4().hex[:6]}", writes=6)
    print("faults scenario:", json.dumps(result.to_dict()))
    assert_clean(result)
    assert result.runs == 2 and result.writes >= 6 * 6
    # The faults happened: every kind, writes applied and then lost among them.
    assert result.faults_by_kind.get("applied_lost", 0) >= 3 and result.applied_then_lost >= 3
    assert sum(result.faults_by_kind.values()) >= 20 and len(result.faults_by_kind) >= 4
    assert_no_leak_in_this_process(caplog, capfd)


def test_a_operators_under_faults_keep_tokens_out_of_xcom_and_template_fields(
    location: SandboxServer, ghl_conn: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider_contacts.operators.notes import GHLCreateNoteOperator

    caplog.set_level(logging.DEBUG)
    contact_id = location.truth()["contacts"][0]["id"]
    location.admin.configure(**chaos.FAULT_MIX)
    values, rendered = [], []
    for i in range(4):
        op = GHLCreateNoteOperator(task_id=f"note_{i}", contact_id=contact_id, body={"body": f"operator note {i}"})
        values.append(json.dumps(op.execute({}), default=str))
        rendered.append(json.dumps({f: getattr(op, f, None) for f in op.template_fields}, default=str))
    location.admin.configure(**chaos.NO_FAULTS)
    bodies = [n["body"] for n in location.truth()["notes"] if n["body"].startswith("operator note")]
    assert sorted(bodies) == [f"operator note {i}" for i in range(4)]  # each exactly once
    assert_no_leak_in_this_process(caplog, capfd, *values, *rendered)


def test_b_reconcile_children_killed_with_sigkill_at_random_points_then_rerun_converge(
    location: SandboxServer, sqlite_target: chaos.TargetSpec, workers: chaos.ReconcileWorkers,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    result = chaos.kill_scenario(location, sqlite_target, MAPPING_FILE, workers, seed=20251, kills=4)
    print("kill scenario:", json.dumps(result.to_dict()))
    assert_clean(result)
    assert result.kills >= 3, "the runs were killed part-way (not finished before the kill point)"
    assert "reconcile report" in workers.logs(), "the children's logs (scanned for tokens) are captured at INFO"
    assert_no_leak_in_this_process(caplog, capfd)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[chaos.TargetSpec]:
    if request.param == "sqlite":
        yield chaos.TargetSpec(path=str(tmp_path / "shared.sqlite"))
        return
    url = request.getfixturevalue("postgres_url")
    target = chaos.TargetSpec(url=url, schema=f"ghl_rel_{uuid.uuid4().hex[:10]}")
    try:
        yield target
    finally:
        target.drop()


def test_c_two_reconciles_of_one_location_at_once_agree_with_the_sandbox(
    location: SandboxServer, shared_target: chaos.TargetSpec, workers: chaos.ReconcileWorkers,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    result = chaos.concurrent_scenario(location, shared_target, MAPPING_FILE, workers, seed=5)
    print("concurrent scenario:", json.dumps(result.to_dict()))
    assert_clean(result)
    assert result.runs == 5
    # A run that failed must have said why (and the next one converged: checked by assert_clean).
    assert all("saying:" in n for n in result.notes if "failed" in n)
    assert not [n for n in result.notes if "did not overlap" in n], result.notes
    assert_no_leak_in_this_process(caplog, capfd)


def test_d_oauth_tokens_expiring_every_two_seconds_mid_run_fail_no_call_and_reuse_no_refresh_token(
    location: SandboxServer, sqlite_target: chaos.TargetSpec, workers: chaos.ReconcileWorkers, tmp_path: Path,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    result = chaos.oauth_expiry_scenario(location, sqlite_target, MAPPING_FILE, workers, workdir=tmp_path,
                                         tag=uuid.uuid4().hex[:6], lifetime_s=2.0)
    print("oauth scenario:", json.dumps(result.to_dict()))
    assert_clean(result)
    assert result.refreshes >= 2, "the access tokens expired (and were refreshed) during the run"
    assert result.failed_calls == 0 and result.reused_refresh_tokens == 0
    assert_no_leak_in_this_process(caplog, capfd)


def test_the_token_checks_see_a_token_wherever_it_is_logged(location: SandboxServer) -> None:
    """The checks above are not blind: a token in a log record (message, argument or exception) is
    found by the scenarios' capture, without the finding quoting it."""
    app = location.admin.install_oauth_app()
    with chaos.LogCapture() as logs:
        logger = logging.getLogger("airflow_provider_contacts.hooks.contacts")
        logger.info("calling with %s", location.token)
        try:
            raise RuntimeError(f"refresh failed for {app['refresh_token']}")
        except RuntimeError:
            logger.exception("refresh")
    found = token_leaks(logs.text())
    assert [f.split(" at ")[0] for f in found] == ["private integration token", "refresh token"]
    assert location.token not in " ".join(found)


def test_a_delete_whose_answer_was_lost_is_reported_as_done(location: SandboxServer, ghl_conn: str) -> None:
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    hook = ContactsHook(ghl_conn)
    contact_id = location.truth()["contacts"][0]["id"]
    note = hook.create_note(contact_id, {"body": "delete me once"})
    # The first attempt is applied and its answer lost; the resend is answered (no fault on it).
    location.admin.configure(write_fault_rate=1.0, fault_operations=["delete-note"], lost_answer_modes=["502"])
    original = location.admin.counters()["applied_then_lost"]
    try:
        _delete_with_one_lost_answer(location, hook, contact_id, note.id)
    finally:
        location.admin.configure(**chaos.NO_FAULTS, fault_operations=[])
    assert location.admin.counters()["applied_then_lost"] == original + 1
    assert not [n for n in location.truth()["notes"] if n["id"] == note.id]


def _delete_with_one_lost_answer(sb: SandboxServer, hook: Any, contact_id: str, note_id: str) -> None:
    """``hook.delete_note`` while only its first attempt is applied-then-lost: the fault is switched
    off by a response hook of the hook's session, right after the first (lost) answer."""
    session = hook.get_conn()

    def after_first(response: Any, *args: Any, **kwargs: Any) -> None:
        sb.admin.configure(write_fault_rate=0.0)

    session.hooks["response"].append(after_first)
    assert hook.delete_note(contact_id, note_id) is True
