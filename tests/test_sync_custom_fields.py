"""Automatic custom field columns: names, types, collisions, and stability across renames,
deletions, additions and locations (the assignment logic, without a database)."""

from __future__ import annotations

import pytest

from airflow_provider_contacts.sync.custom_fields import CustomFieldPlan, column_base, plan_custom_columns
from airflow_provider_contacts.sync.mapping import FieldMapping, MappedRecord

LIVE_FIELDS = [
    {"id": "f1", "name": "Lead Score", "fieldKey": "contact.lead_score", "dataType": "NUMERICAL", "model": "contact"},
    {"id": "f2", "name": "Renewal Date", "fieldKey": "contact.renewal_date", "dataType": "DATE", "model": "contact"},
    {"id": "f3", "name": "Interests", "fieldKey": "contact.interests", "dataType": "CHECKBOX", "model": "contact"},
]


def _columns(plan: CustomFieldPlan) -> dict[str, tuple[str, str]]:
    return {c.field_id: (c.column, c.sql_type) for c in plan.columns.values()}


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("Lead Score", "cf_lead_score"),
        ("Renewal Date", "cf_renewal_date"),
        ("  Größe (cm) ", "cf_grosse_cm"),
        ("Notes (long)", "cf_notes_long"),
        ("¿?", "cf_field"),
        ("x" * 80, "cf_" + "x" * 40),
        ("2nd Phone", "cf_2nd_phone"),
    ],
)
def test_column_names_are_snake_case_with_a_reserved_prefix(name: str, column: str) -> None:
    assert column_base(name) == column


def test_every_field_of_a_new_location_gets_a_typed_column() -> None:
    plan = plan_custom_columns(None, [], LIVE_FIELDS)
    assert _columns(plan) == {
        "f1": ("cf_lead_score", "number"),
        "f2": ("cf_renewal_date", "text"),  # YYYY-MM-DD
        "f3": ("cf_interests", "json"),
    }
    assert len(plan.added) == 3 and not plan.renamed and not plan.removed
    assert [c.column for c in plan.fill] == ["cf_interests", "cf_lead_score", "cf_renewal_date"]

    mapping = FieldMapping.from_dict({})
    mapping.bind_custom_fields(plan)
    assert {k: v for k, v in mapping.columns("contacts").items() if k.startswith("cf_")} == {
        "cf_lead_score": "number", "cf_renewal_date": "text", "cf_interests": "json"}
    record = {"id": "c1", "customFields": [
        {"id": "f1", "value": "42"}, {"id": "f2", "value": 1767225600000}, {"id": "f3", "value": ["crm", "sms"]}]}
    mapped = mapping.map_record("contacts", record)
    assert isinstance(mapped, MappedRecord)
    assert mapped.columns == {"cf_lead_score": 42, "cf_renewal_date": "2026-01-01", "cf_interests": ["crm", "sms"]}
    bad = mapping.map_record("contacts", {"id": "c2", "customFields": [{"id": "f1", "value": "high"}]})
    assert isinstance(bad, MappedRecord) and bad.columns["cf_lead_score"] is None
    assert "Lead Score" in bad.column_errors["cf_lead_score"]


@pytest.mark.parametrize(
    ("data_type", "sql_type"),
    [("TEXT", "text"), ("LARGE_TEXT", "text"), ("NUMERICAL", "number"), ("MONETORY", "number"),
     ("PHONE", "text"), ("DATE", "text"), ("CHECKBOX", "json"), ("SINGLE_OPTIONS", "text"),
     ("MULTIPLE_OPTIONS", "json"), ("RADIO", "text"), ("TEXTBOX_LIST", "json"), ("FILE_UPLOAD", "json"),
     ("SIGNATURE", "json"), ("SOMETHING_NEW", "text"), (None, "text")],
)
def test_types_follow_the_data_type(data_type: str | None, sql_type: str) -> None:
    plan = plan_custom_columns(None, [], [{"id": "f", "name": "F", "dataType": data_type}])
    assert plan.columns["f"].sql_type == sql_type


def test_names_that_collide_get_a_stable_suffix_from_the_id() -> None:
    fields = [{"id": "bbb", "name": "Score", "dataType": "TEXT"}, {"id": "aaa", "name": "score!", "dataType": "TEXT"}]
    plan = plan_custom_columns(None, [], fields)
    assert plan.columns["aaa"].column == "cf_score"  # the smaller id keeps the plain name
    assert plan.columns["bbb"].column.startswith("cf_score_") and len(plan.columns["bbb"].column) == len("cf_score_") + 8
    again = plan_custom_columns(None, [], list(reversed(fields)))
    assert _columns(again) == _columns(plan)


def test_renamed_removed_and_added_fields_keep_their_columns() -> None:
    first = plan_custom_columns(None, [], LIVE_FIELDS)
    stored = first.state()
    renamed = [{**LIVE_FIELDS[0], "name": "Score (0-100)"}, LIVE_FIELDS[1],
               {"id": "f4", "name": "Plan", "dataType": "SINGLE_OPTIONS"}]
    second = plan_custom_columns(stored, [], renamed)
    assert _columns(second) == {**_columns(first), "f4": ("cf_plan", "text")}
    assert second.renamed == ["cf_lead_score: 'Lead Score' renamed to 'Score (0-100)' (column kept)"]
    assert len(second.removed) == 1 and second.removed[0].startswith("cf_interests")
    assert second.added == ["cf_plan ('Plan', SINGLE_OPTIONS -> text)"]
    assert [c.column for c in second.fill] == ["cf_lead_score", "cf_plan", "cf_renewal_date"]
    assert "cf_interests" in second.table_columns  # kept in the table, no longer filled

    # Reported once: the next run with the same fields reports nothing.
    third = plan_custom_columns(second.state(), [], renamed)
    assert (third.added, third.renamed, third.removed) == ([], [], [])
    assert third.state() == second.state()

    # A renamed field whose new name is another field's old one still keeps its own column.
    fourth = plan_custom_columns(third.state(), [], [*renamed, {"id": "f5", "name": "Lead Score", "dataType": "NUMERICAL"}])
    assert fourth.columns["f5"].column.startswith("cf_lead_score_")


def test_unreadable_definitions_keep_the_stored_columns() -> None:
    stored = plan_custom_columns(None, [], LIVE_FIELDS, references=["Renewal Date"]).state()
    plan = plan_custom_columns(stored, [], None, references=["Renewal Date", "Other"])
    assert [c.column for c in plan.fill] == ["cf_interests", "cf_lead_score"]
    assert plan.refs == {"Renewal Date": "f2"} and plan.missing == ["Other"]


def test_explicitly_mapped_fields_get_no_second_column_and_none_fills_nothing() -> None:
    plan = plan_custom_columns(None, [], LIVE_FIELDS, references=["contact.lead_score", "Pincode"])
    assert "f1" not in plan.columns and plan.refs == {"contact.lead_score": "f1"} and plan.missing == ["Pincode"]
    none = plan_custom_columns(None, [], LIVE_FIELDS, auto=False)
    assert none.fill == [] and none.columns == {}


def test_locations_share_a_column_of_the_same_name_and_type_only() -> None:
    a = plan_custom_columns(None, [], LIVE_FIELDS)
    other_fields = [{"id": "g1", "name": "Lead Score", "dataType": "NUMERICAL"},
                    {"id": "g2", "name": "Interests", "dataType": "TEXT"}]
    b = plan_custom_columns(None, [a.state()], other_fields)
    assert b.columns["g1"].column == "cf_lead_score"  # same name, same type: one column
    assert b.columns["g2"].column.startswith("cf_interests_")  # same name, other type: its own
    assert b.table_columns["cf_interests"] == "json" and b.table_columns[b.columns["g2"].column] == "text"
