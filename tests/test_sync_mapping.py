"""The declarative field mapping: transforms, quarantine decisions and clear configuration errors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_provider_contacts.sync.mapping import FieldMapping, MappedRecord, MappingError, Quarantined, content_hash
from airflow_provider_contacts.sync.transforms import TRANSFORMS, TransformError, to_e164

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
    ],
)
def test_phone_numbers_in_mixed_formats_become_e164(raw: str, country: str, e164: str) -> None:
    assert to_e164(raw, country) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("555-0134", "10 digits"),
        ("call me maybe", "characters"),
        ("+1 415 555 0134 x12", "extension"),
        ("(015) 555-0134", "area code"),
        ("+1234", "8 to 15 digits"),
    ],
)
def test_phones_that_cannot_be_normalised_say_why(raw: str, why: str) -> None:
    with pytest.raises(TransformError, match=why):
        to_e164(raw, "US")


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


def test_a_record_that_cannot_be_mapped_is_quarantined_with_every_reason() -> None:
    mapping = FieldMapping.load(MAPPING_FILE)
    mapping.resolve_custom_fields([{"id": "cf1", "name": "Pincode"}, {"id": "cf2", "name": "Lead Score"},
                                   {"id": "cf3", "name": "Plan"}])
    bad = {"id": "c1", "phone": "not a phone", "email": "x@y.z", "dateAdded": "yesterday"}
    result = mapping.map_record("contacts", bad)
    assert isinstance(result, Quarantined)
    assert result.id == "c1"
    assert "phone" in result.reason and "date_added" in result.reason
    assert '"phone":"not a phone"' in result.raw_json  # nothing lost

    good = {"id": "c2", "email": " A@B.CO ", "dateAdded": "2024-01-01T00:00:00Z", "tags": ["x"],
            "customFields": [{"id": "cf2", "value": "7"}]}
    mapped = mapping.map_record("contacts", good)
    assert isinstance(mapped, MappedRecord)
    assert mapped.columns["email"] == "a@b.co" and mapped.columns["lead_score"] == 7
    assert mapped.content_hash == content_hash(good)

    orphan = mapping.map_record("tasks", {"id": "t1", "title": "x"})
    assert isinstance(orphan, Quarantined) and "contactId" in orphan.reason
    keyless = mapping.map_record("notes", {"contactId": "c1", "body": "x"})
    assert isinstance(keyless, Quarantined) and keyless.id is None and "'id' is missing" in keyless.reason


def test_on_error_null_keeps_the_record_and_nulls_the_column() -> None:
    mapping = FieldMapping.from_dict({"contacts": {"columns": {"phone": {"source": "phone", "transform": "phone", "on_error": "null"}}}})
    result = mapping.map_record("contacts", {"id": "c1", "phone": "call me"})
    assert isinstance(result, MappedRecord) and result.columns["phone"] is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"contacts": {"columns": {"email": {"source": "email", "transform": "lowercase"}}}}, "unknown transform 'lowercase'"),
        ({"contacts": {"columns": {"id": "email"}}}, "system column"),
        ({"contacts": {"columns": {"Email": "email"}}}, "lower-case"),
        ({"tasks": {"columns": {"x": {"custom_field": "Plan"}}}}, "contacts only"),
        ({"contacts": {"columns": {"x": {"source": "a", "custom_field": "b"}}}}, "exactly one"),
        ({"contact": {}}, "unknown top-level keys"),
        ({"contacts": {"columns": {"x": {"source": "a", "on_error": "ignore"}}}}, "on_error"),
    ],
)
def test_mapping_errors_name_the_field_and_the_fix(data: dict, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        FieldMapping.from_dict(data)


def test_unknown_custom_field_lists_the_available_ones() -> None:
    mapping = FieldMapping.from_dict({"contacts": {"columns": {"x": {"custom_field": "Shoe size"}}}})
    with pytest.raises(MappingError, match=r"'Shoe size' does not exist.*Pincode"):
        mapping.resolve_custom_fields([{"id": "1", "name": "Pincode", "fieldKey": "contact.pincode"}])
    mapping = FieldMapping.from_dict({"contacts": {"columns": {"x": {"custom_field": "contact.pincode"}}}})
    mapping.resolve_custom_fields([{"id": "1", "name": "Pincode", "fieldKey": "contact.pincode"}])
    assert mapping.custom_field_ids == {"contact.pincode": "1"}
