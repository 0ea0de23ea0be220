"""The leads mapping (the reconcile's format read in reverse) and the follow-up templates: what
they accept, what they refuse (naming the key and the fix), and how a lead row maps. No HTTP."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml

from airflow_provider_contacts.sync.leads.flow import diff_values
from airflow_provider_contacts.sync.leads.mapping import DEFAULT_LEADS_MAPPING_FILE, LeadMapping
from airflow_provider_contacts.sync.leads.templates import TemplateError, add_business_days, load_templates
from airflow_provider_contacts.sync.mapping_model import MappingError


def _mapping(**changes: object) -> dict:
    data = yaml.safe_load(DEFAULT_LEADS_MAPPING_FILE.read_text())
    for dotted, value in changes.items():
        node = data
        *path, last = dotted.split("__")
        for key in path:
            node = node[key]
        node[last] = value
    return data


def test_the_packaged_mapping_maps_a_lead_row() -> None:
    mapping = LeadMapping.load()
    lead = mapping.map_lead(
        {"id": 7, "email": " Ada@Example.COM ", "first_name": "Ada", "last_name": None, "phone": "(415) 555-0134",
         "company_name": "Acme", "lifecycle_stage": " Customer ", "notes": "  met at the fair ", "updated_at": "2026-01-01"}
    )
    assert lead.errors == [] and lead.lead_id == "7" and lead.note == "met at the fair"
    assert lead.values == {
        "email": "ada@example.com", "firstName": "Ada", "phone": "+14155550134", "companyName": "Acme", "tags": ["stage:customer"],
    }
    assert mapping.lead_columns == ["id", "email", "first_name", "last_name", "phone", "company_name", "updated_at", "notes", "lifecycle_stage"]


def test_lifecycle_stages_map_to_listed_tags_and_a_custom_field() -> None:
    mapping = LeadMapping.from_dict(_mapping(leads__lifecycle={"column": "lifecycle_stage", "tags": {"customer": ["Customer", "vip"]}, "custom_field": "Lifecycle Stage"}))
    lead = mapping.map_lead({"id": 1, "email": "a@example.com", "lifecycle_stage": "CUSTOMER"})
    assert lead.values["tags"] == ["customer", "vip"] and lead.values["cf:Lifecycle Stage"] == "CUSTOMER"
    assert mapping.custom_field_refs == ["Lifecycle Stage"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"contacts__columns__email": {"source": "emial", "transform": "email"}}, "did you mean 'email'"),
        ({"contacts__columns__email": {"source": "email", "transform": "timestamp"}}, "cannot be written to HighLevel"),
        ({"contacts__columns__email": {"source": "dateAdded"}}, "exactly one HighLevel contact field"),
        ({"leads__two_way": {"phone": "latest"}}, "conflict rule 'latest' unknown"),
        ({"leads__two_way": {"notes": "newest"}}, "only mapped columns written to a plain contact field"),
        ({"leads__two_way": {"company_name": "source"}}, "cannot change 'companyName'"),
        ({"leads__lifecycle": {"column": "x", "colour": 1}}, "unknown keys ['colour']"),
        ({"leads__key": "id; drop table"}, "must be a SQL identifier"),
    ],
)
def test_a_wrong_mapping_names_the_key_and_the_fix(changes: dict, message: str) -> None:
    with pytest.raises(MappingError) as info:
        LeadMapping.from_dict(_mapping(**changes))
    assert message in str(info.value)


def test_a_bad_lead_names_the_column_the_value_and_the_fix() -> None:
    mapping = LeadMapping.load()
    bad = mapping.map_lead({"id": 3, "email": "ada@", "phone": "call me"})
    assert [(e.column, e.value) for e in bad.errors] == [("email", "ada@"), ("phone", "call me")]
    assert "local@domain.tld" in bad.errors[0].fix and "country code" in bad.errors[1].fix
    nobody = mapping.map_lead({"id": 4, "first_name": "No contact data"})
    assert nobody.errors[0].column == "email" and "neither an email nor a phone" in nobody.errors[0].problem
    assert mapping.map_lead({"id": None, "email": "a@example.com"}).errors[0].column == "id"


def test_only_changed_values_are_sent_and_an_empty_value_clears_nothing() -> None:
    written = {"email": "a@example.com", "firstName": "Ada", "tags": ["stage:lead"]}
    assert diff_values({"email": "a@example.com", "firstName": "Ada", "tags": ["stage:lead"]}, written) == {}
    assert diff_values({"email": "a@example.com", "firstName": None, "tags": ["stage:customer"]}, written) == {"tags": ["stage:customer"]}


def test_templates_due_dates_skip_weekends(tmp_path: Path) -> None:
    assert add_business_days(date(2026, 1, 2), 1) == date(2026, 1, 5)  # Friday + 1 -> Monday
    assert add_business_days(date(2026, 1, 3), 0) == date(2026, 1, 5)  # Saturday -> Monday
    templates = load_templates()
    body = templates.tasks[0].task_body({"first_name": "Ada", "last_name": None, "company_name": "Acme"}, datetime(2026, 1, 2, 15, tzinfo=timezone.utc))
    assert body["title"] == "Call Ada" and body["dueDate"] == "2026-01-05T09:00:00Z" and "Acme" in body["body"]
    bad = tmp_path / "t.yaml"
    bad.write_text("tasks:\n  - title: Call\n    due_in_business_days: -1\n    due_time: '9am'\n")
    with pytest.raises(TemplateError) as info:
        load_templates(bad)
    assert "due_in_business_days" in str(info.value) and "HH:MM" in str(info.value)
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates(tmp_path / "missing.yaml")
