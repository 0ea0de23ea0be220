"""The reconciliation on what the LIVE HighLevel API returns (``ghl-live-notes.md``), fed straight
from a stub hook so every live behaviour is pinned down whatever the sandbox does:

* per-location custom fields that share nothing with any shipped mapping;
* search answers with ``address`` (not ``address1``), ``dateOfBirth`` as epoch milliseconds
  (negative before 1970) and extra fields;
* phones stored as given (``+12010710892``, numbers outside any numbering plan);
* ``400 Contact not found`` instead of 404 for a deleted contact.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.dates import parse_datetime
from airflow_provider_contacts.errors import GHLNotFoundError, GHLScopeError, GHLValidationError
from airflow_provider_contacts.models import ContactActivity
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, RunReport, SqlSink, SyncConfig
from airflow_provider_contacts.sync.mapping import MappingError
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from support.verify import live_rows

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"
LOCATION = "liveLoc0000000000001"
FIELDS = [
    {"id": "cfLeadScore000000001", "name": "Lead Score", "fieldKey": "contact.lead_score", "dataType": "NUMERICAL",
     "model": "contact"},
    {"id": "cfRenewal00000000002", "name": "Renewal Date", "fieldKey": "contact.renewal_date", "dataType": "DATE",
     "model": "contact"},
    {"id": "cfInterests000000003", "name": "Interests", "fieldKey": "contact.interests", "dataType": "MULTIPLE_OPTIONS",
     "model": "contact"},
    {"id": "oppField000000000004", "name": "Deal Stage", "fieldKey": "opportunity.deal_stage", "dataType": "TEXT",
     "model": "opportunity"},
]


def _contact(cid: str, n: int, **fields: Any) -> dict[str, Any]:
    """A contact as the live ``POST /contacts/search`` answers it."""
    stamp = f"2025-01-{n:02d}T10:00:00.000Z"
    return {
        "id": cid, "locationId": LOCATION, "firstName": f"First{n}", "lastName": "Live", "email": f"p{n}@example.com",
        "dateAdded": stamp, "dateUpdated": stamp, "tags": ["live"], "customFields": [],
        "businessName": "Acme", "phoneLabel": "mobile", "additionalEmails": [], "additionalPhones": [],
        "validEmail": True, "followers": [], "dndSettings": {}, "firstNameLowerCase": f"first{n}",
        "lastNameLowerCase": "live", **fields,
    }


class LiveHook:
    """Stands in for ``ContactsHook`` with live-API answers (plain dicts) and the live errors."""

    location_id = LOCATION

    def __init__(self, contacts: list[dict[str, Any]], fields: list[dict[str, Any]] | None = None) -> None:
        self.contacts = {c["id"]: c for c in contacts}
        self.fields = copy.deepcopy(FIELDS if fields is None else fields)
        self.tasks: dict[str, list[dict[str, Any]]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.stats = {"requests": 0}
        self.get_calls: list[str] = []
        self.vanish_on_activity: set[str] = set()
        self.fields_error: Exception | None = None
        self.not_found: type[Exception] = GHLNotFoundError

    def _missing(self, cid: str, operation: str) -> Exception:
        return self.not_found("Contact not found", status=400, operation=operation)

    def get_custom_fields(self, model: str | None = None) -> list[dict[str, Any]]:
        self.stats["requests"] += 1
        if self.fields_error is not None:
            raise self.fields_error
        return [copy.deepcopy(f) for f in self.fields if model in (None, "all") or f["model"] == model]

    def iter_search_contacts(self, filters: Any = None, sort: Any = None, page_limit: int = 500) -> Iterator[dict]:
        self.stats["requests"] += 1
        since = parse_datetime(filters[0]["value"]["gte"]) if filters else None
        key = (sort or [{"field": "dateUpdated"}])[0]["field"]
        found = [c for c in self.contacts.values() if since is None or parse_datetime(c["dateUpdated"]) >= since]
        for contact in sorted(found, key=lambda c: (parse_datetime(c[key]), c["id"])):
            yield {**copy.deepcopy(contact), "searchAfter": [1, contact["id"]]}

    def get_contact(self, contact_id: str) -> dict[str, Any]:
        """The GET shape: ``address1``, ``dateOfBirth`` as a date string, no search-only fields."""
        self.stats["requests"] += 1
        self.get_calls.append(contact_id)
        if contact_id not in self.contacts:
            raise self._missing(contact_id, "get-contact")
        shape = {k: v for k, v in self.contacts[contact_id].items() if k not in ("businessName", "phoneLabel")}
        if "address" in shape:
            shape["address1"] = shape.pop("address")
        return shape

    def _activity(self, cid: str) -> ContactActivity:
        if cid not in self.contacts or cid in self.vanish_on_activity:
            raise self._missing(cid, "get-all-notes")
        return ContactActivity(cid, copy.deepcopy(self.tasks.get(cid, [])), copy.deepcopy(self.notes.get(cid, [])))

    def fetch_tasks_and_notes(self, contact_ids: Any, max_workers: int = 8) -> Iterator[ContactActivity]:
        for cid in contact_ids:
            self.stats["requests"] += 2
            yield self._activity(cid)

    def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        self.stats["requests"] += 1
        return self._activity(contact_id).tasks

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        self.stats["requests"] += 1
        return self._activity(contact_id).notes


class Target:
    def __init__(self, path: Path, mapping: FieldMapping | None = None) -> None:
        self.mapping = mapping or FieldMapping.load(MAPPING_FILE)
        self.sink = SqlSink(EmbeddedSqliteHook(path), self.mapping)

    def run(self, hook: LiveHook, **config: Any) -> RunReport:
        return ReconcileEngine(hook, self.sink, self.mapping, SyncConfig(**config)).run()

    def rows(self, entity: str = "contacts") -> dict[str, dict[str, Any]]:
        return live_rows(self.sink, entity, LOCATION)

    def columns(self) -> set[str]:
        with self.sink.transaction() as tx:
            return tx.column_names("ghl_contacts") or set()

    def all_rows(self, table: str) -> dict[str, Any]:
        with self.sink.transaction() as tx:
            return dict(tx.query(f"SELECT id, deleted_at FROM {table}"))


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    t = Target(tmp_path / "live.sqlite")
    yield t
    t.sink.close()


def test_first_run_on_a_location_with_its_own_custom_fields_makes_them_columns(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    hook = LiveHook([
        _contact("c1", 1, customFields=[
            {"id": "cfLeadScore000000001", "value": "87"},
            {"id": "cfRenewal00000000002", "value": 1767225600000},
            {"id": "cfInterests000000003", "value": ["Yoga", "Travel"]},
        ]),
        _contact("c2", 2, customFields=[{"id": "cfLeadScore000000001", "value": "high"}]),
    ])
    with caplog.at_level(logging.INFO):
        report = target.run(hook)

    assert report.counts("contacts").inserted == 2 and report.counts("contacts").quarantined == 0
    assert {"cf_lead_score", "cf_renewal_date", "cf_interests"} <= target.columns()
    assert not {c for c in target.columns() if c.startswith("cf_deal")}  # opportunity fields are not contacts'
    rows = target.rows()
    assert (rows["c1"]["cf_lead_score"], rows["c1"]["cf_renewal_date"], rows["c1"]["cf_interests"]) == (
        87, "2026-01-01", '["Yoga", "Travel"]')
    assert rows["c2"]["cf_lead_score"] is None  # "high" is no number: NULL, counted, contact kept
    assert report.column_errors == {"ghl_contacts": {"cf_lead_score": 1}}
    assert report.custom_fields.columns == 3 and len(report.custom_fields.added) == 3
    assert "cf_lead_score" in report.format_table()
    # The stub's contacts fill only a few of the shipped columns: the others are named once.
    assert [w for w in report.warnings if "stayed NULL for all 2 record(s)" not in w] == []
    assert report.null_columns["ghl_contacts"]["website"] == 2 and "email" not in report.null_columns["ghl_contacts"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a good run logs no error


def test_custom_field_columns_survive_rename_removal_and_addition(target: Target) -> None:
    values = [{"id": "cfLeadScore000000001", "value": "5"}, {"id": "cfInterests000000003", "value": ["Yoga"]}]
    hook = LiveHook([_contact("c1", 1, customFields=values)])
    target.run(hook)

    hook.fields[0]["name"] = "Score (0-100)"  # renamed in HighLevel
    del hook.fields[2]  # Interests deleted in HighLevel
    hook.fields.append({"id": "cfPlan00000000000005", "name": "Plan", "dataType": "SINGLE_OPTIONS", "model": "contact"})
    hook.contacts["c1"].update(dateUpdated="2025-02-01T00:00:00.000Z", customFields=[
        {"id": "cfLeadScore000000001", "value": "6"}, {"id": "cfPlan00000000000005", "value": "pro"}])
    report = target.run(hook)

    assert report.custom_fields.renamed == ["cf_lead_score: 'Lead Score' renamed to 'Score (0-100)' (column kept)"]
    assert report.custom_fields.removed and report.custom_fields.removed[0].startswith("cf_interests")
    assert report.custom_fields.added == ["cf_plan ('Plan', SINGLE_OPTIONS -> text)"]
    assert {"cf_lead_score", "cf_interests", "cf_plan"} <= target.columns()  # ALTER TABLE ADD COLUMN
    row = target.rows()["c1"]
    assert (row["cf_lead_score"], row["cf_plan"], row["cf_interests"]) == (6, "pro", None)
    assert "cf_score_0_100" not in target.columns()

    again = target.run(hook)  # reported once
    assert (again.custom_fields.added, again.custom_fields.renamed, again.custom_fields.removed) == ([], [], [])


def test_a_mapped_custom_field_the_location_lacks_warns_and_fails_only_when_required(tmp_path: Path) -> None:
    data = {"contacts": {"columns": {"pincode": {"custom_field": "Pincode"}}}}
    optional = Target(tmp_path / "a.sqlite", FieldMapping.from_dict(data))
    report = optional.run(LiveHook([_contact("c1", 1)]))
    assert report.custom_fields.missing == ["Pincode (column pincode)"]
    assert any("'Pincode'" in w and "does not exist" in w and "Lead Score" in w for w in report.warnings)
    assert optional.rows()["c1"]["pincode"] is None and report.counts("contacts").inserted == 1
    optional.sink.close()

    data["contacts"]["columns"]["pincode"]["required"] = True
    required = Target(tmp_path / "b.sqlite", FieldMapping.from_dict(data))
    with pytest.raises(MappingError, match="Pincode"):
        required.run(LiveHook([_contact("c1", 1)]))
    required.sink.close()


def test_custom_fields_the_token_cannot_read_keep_the_stored_columns(target: Target) -> None:
    hook = LiveHook([_contact("c1", 1, customFields=[{"id": "cfLeadScore000000001", "value": "5"}])])
    target.run(hook)
    hook.fields_error = GHLScopeError("The token is not authorized for this scope.", status=401)
    hook.contacts["c1"].update(dateUpdated="2025-02-01T00:00:00.000Z",
                               customFields=[{"id": "cfLeadScore000000001", "value": "9"}])
    report = target.run(hook)
    assert any("customFields.readonly" in w for w in report.warnings)
    assert target.rows()["c1"]["cf_lead_score"] == 9


def test_search_shapes_land_in_the_same_columns_as_get_shapes(target: Target) -> None:
    hook = LiveHook([
        _contact("c1", 1, address="1 Test St", dateOfBirth=74736000000, phone="+12010710892"),
        _contact("c2", 2, address1="2 Spec Rd", dateOfBirth="1967-03-01", phone="(201) 555-0143 ext. 12"),
        _contact("c3", 3, dateOfBirth=-89596800000, phone="+99912345678"),
        _contact("c4", 4, dateOfBirth="not a date", phone="+1 415-555-0134"),
    ])
    report = target.run(hook)
    rows = target.rows()
    assert rows["c1"]["address1"] == "1 Test St" and rows["c2"]["address1"] == "2 Spec Rd"
    assert [rows[c]["date_of_birth"] for c in ("c1", "c2", "c3", "c4")] == ["1972-05-15", "1967-03-01", "1967-03-01", None]
    assert [rows[c]["phone"] for c in ("c1", "c2", "c3", "c4")] == [
        "+12010710892", "(201) 555-0143 ext. 12", "+99912345678", "+14155550134"]
    assert report.counts("contacts").inserted == 4 and report.counts("contacts").quarantined == 0
    assert report.column_errors == {"ghl_contacts": {"date_of_birth": 1}}
    assert '"businessName":"Acme"' in rows["c1"]["raw_json"]  # the extra search fields stay in raw_json
    assert "searchAfter" not in rows["c1"]["raw_json"]


def test_a_deleted_contact_answering_400_not_found_is_marked_deleted(target: Target) -> None:
    contacts = [_contact(f"c{i}", i) for i in range(1, 6)]
    hook = LiveHook(contacts)
    hook.tasks["c2"] = [{"id": "t1", "title": "Call", "contactId": "c2"}]
    target.run(hook)
    del hook.contacts["c2"]  # deleted in HighLevel: GET /contacts/c2 -> 400 "Contact not found"
    report = target.run(hook)
    assert report.mode == "incremental"
    assert hook.get_calls == ["c2"]
    assert report.counts("contacts").deleted == 1 and report.counts("tasks").deleted == 1
    assert target.all_rows("ghl_contacts")["c2"] is not None

    # Also when the hook's error class is the generic 400 one, only the message saying "not found".
    hook.not_found = GHLValidationError
    del hook.contacts["c3"]
    assert target.run(hook).counts("contacts").deleted == 1


def test_a_contact_vanishing_while_its_activity_is_read_does_not_fail_the_run(target: Target) -> None:
    hook = LiveHook([_contact(f"c{i}", i) for i in range(1, 4)])
    target.run(hook)
    hook.contacts["c1"]["dateUpdated"] = hook.contacts["c2"]["dateUpdated"] = "2025-03-01T00:00:00.000Z"
    hook.vanish_on_activity = {"c1"}  # 400 "Contact not found" on its notes, mid-batch
    report = target.run(hook)
    assert report.counts("contacts").updated == 2


def test_the_content_hash_does_not_flap_between_search_and_get(target: Target) -> None:
    """Contacts are stored from the search answer only; GET (the deletion check) is never written."""
    hook = LiveHook([_contact(f"c{i}", i, address=f"{i} Test St", dateOfBirth=74736000000) for i in range(1, 5)])
    target.run(hook)
    before = target.rows()
    del hook.contacts["c4"]
    hook.contacts["c4x"] = _contact("c4x", 9)  # a new contact, and one deletion to confirm by GET
    second = target.run(hook)
    assert hook.get_calls == ["c4"]
    third = target.run(hook)
    assert second.counts("contacts").updated == third.counts("contacts").updated == 0
    assert third.counts("contacts").inserted == 0
    after = target.rows()
    assert {c: after[c]["content_hash"] for c in ("c1", "c2", "c3")} == {
        c: before[c]["content_hash"] for c in ("c1", "c2", "c3")}


def test_locations_sharing_a_target_share_columns_only_of_the_same_type(target: Target) -> None:
    first = LiveHook([_contact("a1", 1, customFields=[{"id": "cfLeadScore000000001", "value": "7"}])])
    other_fields = [{"id": "otherScore0000000001", "name": "Lead Score", "dataType": "TEXT", "model": "contact"},
                    {"id": "otherInterests000002", "name": "Interests", "dataType": "MULTIPLE_OPTIONS",
                     "model": "contact"}]
    second = LiveHook([_contact("b1", 1, locationId="otherLoc000000000002", customFields=[
        {"id": "otherScore0000000001", "value": "A+"}, {"id": "otherInterests000002", "value": ["Yoga"]}])],
        fields=other_fields)
    second.location_id = "otherLoc000000000002"
    target.run(first)
    report = target.run(second)

    text_score = next(line.split()[0] for line in report.custom_fields.added if "'Lead Score'" in line)
    assert text_score.startswith("cf_lead_score_")  # same name, another type: a column of its own
    assert any(line.startswith("cf_interests (") for line in report.custom_fields.added)  # same type: shared
    b1 = live_rows(target.sink, "contacts", "otherLoc000000000002")["b1"]
    assert (b1[text_score], b1["cf_interests"], b1["cf_lead_score"]) == ("A+", '["Yoga"]', None)
    target.run(first, full_sweep=True)
    a1 = target.rows()["a1"]
    assert (a1["cf_lead_score"], a1[text_score]) == (7, None)
