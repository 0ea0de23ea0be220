"""The declarative field mapping: transforms, what a bad value costs (NULL and a count, or the
record's quarantine), text cleaning, and clear configuration errors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_provider_contacts.sync.mapping import FieldMapping, MappedRecord, MappingError, Quarantined, content_hash
from airflow_provider_contacts.sync.transforms import TRANSFORMS, TransformError, clean_text, to_e164

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("+1 415-555-0134", "US", "+14155550134"),
        ("(415) 555-0134", "US", "+14155550134"),
        ("4155550134", "US", "+14155550134"),
        ("1-415-555-0134", "US", "+14155550134"),
        ("+44 7911 123456", "US", "+447911123456"),
        ("0044 7911 123456", "US", "+447911123456"),
        ("+49 (0)30 1234567", "US", "+49301234567"),
        ("030 1234567", "DE", "+49301234567"),
        ("07911 123456", "GB", "+447911123456"),
        # Stored by HighLevel as given, outside the numbering plan (exchange 071): still possible.
        ("+12010710892", "US", "+12010710892"),
        ("+1 201 071 0892", "US", "+12010710892"),
    ],
)
def test_phone_numbers_in_mixed_formats_become_e164(raw: str, country: str, e164: str) -> None:
    assert to_e164(raw, country) == e164
    assert TRANSFORMS["phone"](raw, default_country=country) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("555-0134", "local-only"),
        ("call me maybe", "does not parse"),
        ("+1 415 555 0134 x12", "extension"),
        ("+1234", "wrong length"),
        ("+999 12345678", "does not parse"),
    ],
)
def test_phones_without_an_e164_form_are_kept_as_given(raw: str, why: str) -> None:
    with pytest.raises(TransformError, match=why):
        to_e164(raw, "US")
    # The column keeps what HighLevel holds (trimmed): a phone never costs the contact.
    assert TRANSFORMS["phone"](f"  {raw} ", default_country="US") == raw


def test_other_transforms() -> None:
    assert TRANSFORMS["email"]("  John.Doe@Example.COM ") == "john.doe@example.com"
    assert TRANSFORMS["timestamp"]("2024-05-01T14:30:00.123+02:00") == datetime(
        2024, 5, 1, 12, 30, 0, 123000, tzinfo=timezone.utc
    )
    assert TRANSFORMS["timestamp"]("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert TRANSFORMS["timestamp"](1714566600000) == datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    assert TRANSFORMS["date"]("2024-05-01T23:30:00Z") == "2024-05-01"
    assert TRANSFORMS["tags"]([" vip", "vip", "", "lead"]) == ["vip", "lead"]
    assert TRANSFORMS["tags"](None) == []
    assert TRANSFORMS["boolean"]("yes") is True
    assert TRANSFORMS["number"]("42") == 42 and TRANSFORMS["number"]("4.5") == 4.5
    assert TRANSFORMS["text"]("") is None
    for name, bad in (("email", "no-at-sign"), ("timestamp", "next tuesday"), ("boolean", "maybe"), ("number", "1,000")):
        with pytest.raises(TransformError):
            TRANSFORMS[name](bad)


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        (74736000000, "1972-05-15"),  # search: epoch milliseconds
        (-89596800000, "1967-03-01"),  # before 1970: negative, never a ValueError
        ("-89596800000", "1967-03-01"),
        ("1972-05-15", "1972-05-15"),  # GET /contacts/{id}
        ("1990-09-25T00:00:00.000Z", "1990-09-25"),
        ("05/15/1972", "1972-05-15"),  # a dateOfBirth form of the spec
        (0, "1970-01-01"),  # by type, not by magnitude
    ],
)
def test_date_of_birth_in_every_shape_the_api_sends(raw: object, day: str) -> None:
    assert TRANSFORMS["date"](raw) == day
    mapping = FieldMapping.load(MAPPING_FILE)
    mapped = mapping.map_record("contacts", {"id": "c1", "dateOfBirth": raw})
    assert isinstance(mapped, MappedRecord) and mapped.columns["date_of_birth"] == day


def test_numbers_no_target_can_store_are_refused_or_widened() -> None:
    assert TRANSFORMS["number"](str(10**30)) == 1e30  # beyond 64 bits: a double
    assert isinstance(TRANSFORMS["number"](2**62), int)
    for bad in ("1e400", float("inf"), "nan", 10**400):
        with pytest.raises(TransformError):
            TRANSFORMS["number"](bad)


def test_a_value_that_does_not_convert_is_null_and_counted_not_a_dropped_record() -> None:
    mapping = FieldMapping.load(MAPPING_FILE)
    record = {"id": "c1", "phone": "call me", "email": "not-an-email", "dateAdded": "yesterday",
              "dateOfBirth": "31/12/1990", "tags": "vip", "dnd": "perhaps"}
    result = mapping.map_record("contacts", record)
    assert isinstance(result, MappedRecord)
    assert result.columns["phone"] == "call me"  # kept as given, not an error
    assert {k: result.columns[k] for k in ("email", "date_added", "date_of_birth", "dnd")} == dict.fromkeys(
        ("email", "date_added", "date_of_birth", "dnd"))
    assert set(result.column_errors) == {"email", "date_added", "date_of_birth", "dnd"}
    assert "'dateAdded'" in result.column_errors["date_added"] and "yesterday" in result.column_errors["date_added"]
    assert '"dateOfBirth":"31/12/1990"' in result.raw_json  # nothing lost
    assert result.content_hash == content_hash(record)


def test_quarantine_is_for_missing_keys_and_required_columns_only() -> None:
    data = {
        "contacts": {"columns": {
            "date_added": {"source": "dateAdded", "transform": "timestamp", "required": True},
            "email": {"source": "email", "transform": "email", "on_error": "quarantine"},
            "phone": {"source": "phone", "transform": "phone"},
        }},
        "tasks": {"columns": {"title": "title"}},
        "notes": {"columns": {"body": "body"}},
    }
    mapping = FieldMapping.from_dict(data)
    bad = mapping.map_record("contacts", {"id": "c1", "phone": "x", "email": "nope", "dateAdded": "yesterday"})
    assert isinstance(bad, Quarantined) and bad.id == "c1"
    assert "date_added" in bad.reason and "email" in bad.reason and "phone" not in bad.reason
    empty = mapping.map_record("contacts", {"id": "c2", "email": "a@b.co"})
    assert isinstance(empty, Quarantined) and "required" in empty.reason

    orphan = mapping.map_record("tasks", {"id": "t1", "title": "x"})
    assert isinstance(orphan, Quarantined) and "contactId" in orphan.reason
    keyless = mapping.map_record("notes", {"contactId": "c1", "body": "x"})
    assert isinstance(keyless, Quarantined) and keyless.id is None and "'id' is missing" in keyless.reason


def test_source_lists_read_the_first_field_present() -> None:
    mapping = FieldMapping.load(MAPPING_FILE)
    search = mapping.map_record("contacts", {"id": "c1", "address": "1 Test St"})
    by_id = mapping.map_record("contacts", {"id": "c1", "address1": "1 Test St"})
    both = mapping.map_record("contacts", {"id": "c1", "address1": "", "address": "1 Test St"})
    assert search.columns["address1"] == by_id.columns["address1"] == both.columns["address1"] == "1 Test St"
    assert '"address":"1 Test St"' in search.raw_json  # the search's own shape stays in raw_json


def test_text_no_target_can_store_is_cleaned_and_reported() -> None:
    assert clean_text("a\x00b") == ("ab", True)
    assert clean_text({"k\x00": ["x\ud800"]}) == ({"k": ["x\ufffd"]}, True)
    same = {"a": [1, "b"]}
    assert clean_text(same) == (same, False)

    mapping = FieldMapping.load(MAPPING_FILE)
    note = mapping.map_record("notes", {"id": "n1", "contactId": "c1", "body": "a\x00b", "title": "ok"})
    assert isinstance(note, MappedRecord)
    assert note.columns["body"] == "ab" and "\\u0000" not in note.raw_json and '"body":"ab"' in note.raw_json
    assert set(note.cleaned) == {"body", "raw_json"}
    lone = mapping.map_record("notes", {"id": "n2", "contactId": "c1", "body": "x\ud800"})
    assert isinstance(lone, MappedRecord) and lone.columns["body"] == "x\ufffd"  # hashable, storable


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"contacts": {"columns": {"email": {"source": "email", "transform": "lowercase"}}}}, "unknown transform 'lowercase'"),
        ({"contacts": {"columns": {"id": "email"}}}, "system column"),
        ({"contacts": {"columns": {"Email": "email"}}}, "lower-case"),
        ({"contacts": {"columns": {"cf_score": "score"}}}, "reserved"),
        ({"tasks": {"columns": {"x": {"custom_field": "Plan"}}}}, "contacts only"),
        ({"contacts": {"columns": {"x": {"source": "a", "custom_field": "b"}}}}, "exactly one"),
        ({"contacts": {"columns": {"x": {"source": ["a", 3]}}}}, "list of them"),
        ({"contact": {}}, "unknown top-level keys"),
        ({"contacts": {"columns": {"x": {"source": "a", "on_error": "ignore"}}}}, "on_error"),
        ({"options": {"default_country": "XX"}}, "default_country"),
        ({"options": {"custom_fields": "some"}}, "custom_fields"),
        ({"options": {"country": "US"}}, "unknown options"),
    ],
)
def test_mapping_errors_name_the_field_and_the_fix(data: dict, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        FieldMapping.from_dict(data)


def test_the_shipped_mapping_names_no_location_specific_field() -> None:
    mapping = FieldMapping.load(MAPPING_FILE)
    assert mapping.custom_field_names == []
    assert mapping.custom_fields == "auto"
    assert not any(c.required for columns in mapping.tables.values() for c in columns)
    assert all(c.on_error == "null" for columns in mapping.tables.values() for c in columns)


def test_a_mapped_custom_field_the_location_lacks_is_null_unless_required() -> None:
    fields = [{"id": "1", "name": "Pincode", "fieldKey": "contact.pincode"}]
    mapping = FieldMapping.from_dict({"contacts": {"columns": {"x": {"custom_field": "Shoe size"}}}})
    assert mapping.resolve_custom_fields(fields) == ["Shoe size"]
    result = mapping.map_record("contacts", {"id": "c1", "customFields": [{"id": "1", "value": "80331"}]})
    assert isinstance(result, MappedRecord) and result.columns["x"] is None

    required = FieldMapping.from_dict({"contacts": {"columns": {"x": {"custom_field": "Shoe size", "required": True}}}})
    with pytest.raises(MappingError, match=r"'Shoe size'.*available.*Pincode"):
        required.resolve_custom_fields(fields)

    by_key = FieldMapping.from_dict({"contacts": {"columns": {"x": {"custom_field": "contact.pincode"}}}})
    assert by_key.resolve_custom_fields(fields) == []
    assert by_key.custom_field_ids == {"contact.pincode": "1"}
    mapped = by_key.map_record("contacts", {"id": "c1", "customFields": [{"id": "1", "fieldValue": "80331"}]})
    assert mapped.columns["x"] == "80331"
