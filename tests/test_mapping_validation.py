"""Mappings are validated when they are loaded (issue #14 item 7): one pydantic model of the file,
sources checked against the API's fields with a did-you-mean, booleans that are booleans, an
escape hatch for fields the schemas do not list, and a run-report warning for a mapped column
that stayed NULL for every record (a silent typo shows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_sync_live_location import LiveHook, Target, _contact

from airflow_provider_contacts.sync.mapping import FieldMapping, MappedRecord, MappingError
from airflow_provider_contacts.sync.mapping_model import MappingModel, validate_mapping

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"


def _contacts(**columns: Any) -> dict[str, Any]:
    return {"contacts": {"columns": columns}}


def _error(data: Any) -> str:
    with pytest.raises(MappingError) as caught:
        FieldMapping.from_dict(data)
    return str(caught.value)


def test_the_mapping_is_built_through_the_pydantic_model() -> None:
    model = validate_mapping(_contacts(email={"source": "email", "transform": "email", "required": True}))
    assert isinstance(model, MappingModel)
    assert model.contacts.columns["email"].required is True
    mapping = FieldMapping.from_model(model)
    assert mapping.tables["contacts"][0].required is True and mapping.tables["contacts"][0].sources == ("email",)
    shipped = FieldMapping.load(MAPPING_FILE)  # every shipped source is a known field
    assert [c.name for c in shipped.tables["tasks"]] == ["title", "body", "assigned_to", "due_date", "completed"]


@pytest.mark.parametrize(
    ("entity", "source", "message"),
    [
        ("contacts", "emial", "unknown field 'emial' for contacts; did you mean 'email'?"),
        ("contacts", "firstname", "unknown field 'firstname' for contacts; did you mean 'firstName'?"),
        ("contacts", "adress", "did you mean 'address'?"),  # the live search's field counts
        ("contacts", "dndSetings.SMS.status", "unknown field 'dndSetings' (in 'dndSetings.SMS.status') for contacts; "
                                              "did you mean 'dndSettings'?"),
        ("tasks", "dueDat", "unknown field 'dueDat' for tasks; did you mean 'dueDate'?"),
        ("notes", "bdy", "unknown field 'bdy' for notes; did you mean 'body'?"),
        ("notes", "dueDate", "unknown field 'dueDate' for notes"),  # a task field is no note field
    ],
)
def test_an_unknown_source_field_fails_the_load_with_a_did_you_mean(entity: str, source: str, message: str) -> None:
    text = _error({entity: {"columns": {"x": {"source": source}}}})
    assert message in text
    assert f"{entity}.columns.x.source" in text and "unchecked: true" in text  # the key and the way out


def test_every_source_of_a_list_is_checked_and_dotted_paths_check_their_first_segment() -> None:
    assert "unknown field 'adress1'" in _error(_contacts(a={"source": ["address", "adress1"]}))
    mapping = FieldMapping.from_dict(_contacts(sms={"source": "dndSettings.SMS.status"},
                                               first={"source": ["firstName", "firstNameLowerCase"]}))
    record = {"id": "c1", "dndSettings": {"SMS": {"status": "active"}}, "firstNameLowerCase": "ann"}
    assert mapping.map_record("contacts", record).columns == {"sms": "active", "first": "ann"}


@pytest.mark.parametrize(
    ("value", "fix"),
    [("false", "`required: false`"), ("true", "`required: true`"), ("no", "`required: false`"),
     (1, "`required: true`"), ("maybe", "`required: true` or `required: false`")],
)
def test_booleans_must_be_booleans_not_strings_that_look_truthy(value: Any, fix: str) -> None:
    text = _error(_contacts(email={"source": "email", "required": value}))
    assert "contacts.columns.email.required" in text and "must be a boolean" in text
    assert fix in text and "no quotes" in text
    assert "unchecked" in _error(_contacts(x={"source": "fax", "unchecked": "true"}))


def test_required_on_a_misspelt_field_is_caught_at_load_not_by_quarantining_every_record() -> None:
    text = _error(_contacts(email={"source": "emial", "transform": "email", "required": True}))
    assert "unknown field 'emial' for contacts; did you mean 'email'?" in text


def test_fields_the_schemas_do_not_list_pass_with_unchecked_or_extra_fields() -> None:
    unchecked = FieldMapping.from_dict(_contacts(score={"source": "leadScore", "unchecked": True, "required": True}))
    assert unchecked.tables["contacts"][0].unchecked is True
    extra = FieldMapping.from_dict({
        "options": {"extra_fields": {"contacts": ["leadScore"], "tasks": ["priority"]}},
        "contacts": {"columns": {"score": {"source": "leadScore.value", "transform": "number"}}},
        "tasks": {"columns": {"priority": "priority"}},
    })
    assert extra.extra_fields == {"contacts": ("leadScore",), "tasks": ("priority",)}
    result = extra.map_record("contacts", {"id": "c1", "leadScore": {"value": "7"}})
    assert isinstance(result, MappedRecord) and result.columns["score"] == 7
    # extra_fields are per entity: a contact field is not a note field.
    assert "unknown field 'leadScore' for notes" in _error({
        "options": {"extra_fields": {"contacts": ["leadScore"]}}, "notes": {"columns": {"s": "leadScore"}}})
    assert "did you mean 'contacts'?" in _error({"options": {"extra_fields": {"contact": ["x"]}}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_contacts(email={"sourc": "email"}), "contacts.columns.email: unknown keys ['sourc']"),
        (_contacts(email={"sourc": "email"}), "did you mean 'source'?"),
        (_contacts(email={"source": "email", "type": "text"}), "unknown keys ['type']"),
        ({"contacts": {"colums": {}}}, "contacts: unknown keys ['colums']; allowed: columns; did you mean 'columns'?"),
        ({"contact": {}}, "unknown top-level keys ['contact']"),
        ({"options": {"custom_field": "auto"}}, "did you mean 'custom_fields'?"),
        ({"options": {"default_country": False}}, "default_country: 'NO'"),  # YAML's Norway problem
        (_contacts(x={"source": "email", "transform": "emial"}), "unknown transform 'emial'"),
        (_contacts(x={"source": "email", "transform": "emial"}), "did you mean 'email'?"),
        (_contacts(x=5), "contacts.columns.x: expected an API field name or a dict with 'source', got 5"),
        (_contacts(x={"custom_field": 2024}), "quote it"),
        ("not a mapping", "the mapping must be a dict"),
    ],
)
def test_structure_errors_name_the_key_and_the_fix(data: Any, message: str) -> None:
    assert message in _error(data)


def test_several_problems_are_reported_together() -> None:
    text = _error({
        "contacts": {"columns": {"email": {"source": "emial"}, "first": {"source": "frstName"}}},
        "tasks": {"columns": {"due": {"source": "dueDat"}}},
    })
    assert text.startswith("mapping: 3 problems:")
    assert "'emial'" in text and "'frstName'" in text and "'dueDat'" in text


def test_the_yaml_file_is_validated_on_load(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text('contacts:\n  columns:\n    email: {source: email, required: "false"}\n', encoding="utf-8")
    with pytest.raises(MappingError, match=r"mapping\.yaml: contacts\.columns\.email\.required: .*`required: false`"):
        FieldMapping.load(path)
    path.write_text("contacts:\n  columns:\n    email: {source: email, required: false}\n", encoding="utf-8")
    assert FieldMapping.load(path).tables["contacts"][0].required is False


def test_a_column_null_for_every_record_is_a_run_report_warning_with_the_count(tmp_path: Path) -> None:
    mapping = FieldMapping.from_dict({
        "contacts": {"columns": {
            "email": "email",
            "score": {"source": "leadScroe", "unchecked": True},  # the typo the check cannot see
            "sms": {"source": "dndSettings.SMS.stauts"},  # a dotted path's tail is not checked
            "born": {"source": "dateOfBirth", "transform": "date"},
        }},
        "tasks": {"columns": {"title": "title"}},
    })
    target = Target(tmp_path / "n.sqlite", mapping)
    hook = LiveHook([
        _contact(f"c{i}", i, leadScore=i, dndSettings={"SMS": {"status": "active"}}, dateOfBirth="31/12/1990")
        for i in range(1, 4)
    ])
    hook.tasks["c1"] = [{"id": "t1", "contactId": "c1", "title": "Call"}]
    report = target.run(hook)
    target.sink.close()

    assert report.null_columns == {"ghl_contacts": {"score": 3, "sms": 3, "born": 3}}
    [warning] = [w for w in report.warnings if "stayed NULL" in w]
    assert warning.startswith("ghl_contacts: 3 mapped column(s) stayed NULL for all 3 record(s) read this run")
    assert "score ('leadScroe')" in warning and "sms ('dndSettings.SMS.stauts')" in warning
    assert "born ('dateOfBirth'; 3 value(s) did not convert, see column_errors)" in warning
    assert "ghl_tasks" not in report.null_columns  # its one column had a value
    assert "stayed NULL" in report.format_table() and report.to_dict()["null_columns"] == report.null_columns
