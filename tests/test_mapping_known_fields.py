"""The curated lists of API fields a mapping's ``source`` may name (``sync/known_fields.py``) are
what HighLevel's spec says, plus the live search-only fields of ``ghl-live-notes.md``.

The spec is not shipped in the package: this test reads the reference copy from
``GHL_REFERENCE_DIR`` (default ``../shared/reference/ghl-openapi`` next to the repository) and is
skipped when it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_provider_contacts.sync.known_fields import (
    KNOWN_FIELDS,
    LIVE_SEARCH_FIELDS,
    SPEC_FIELDS,
    did_you_mean,
    fields_from_spec,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = Path(os.environ.get("GHL_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference" / "ghl-openapi"))


@pytest.fixture(scope="module")
def spec() -> dict:
    path = SPEC_DIR / "contacts.json"
    if not path.is_file():
        pytest.skip(f"HighLevel reference spec not found at {path} (set GHL_REFERENCE_DIR)")
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_curated_lists_are_the_spec_schemas(spec: dict) -> None:
    generated = fields_from_spec(spec)
    for entity in ("contacts", "tasks", "notes"):
        assert generated[entity] == SPEC_FIELDS[entity], (
            f"{entity}: regenerate SPEC_FIELDS in sync/known_fields.py; added in the spec "
            f"{sorted(generated[entity] - SPEC_FIELDS[entity])}, gone {sorted(SPEC_FIELDS[entity] - generated[entity])}"
        )


def test_the_live_search_fields_are_the_ones_the_notes_name() -> None:
    notes = SPEC_DIR.parent / "ghl-live-notes.md"
    if not notes.is_file():
        pytest.skip(f"ghl-live-notes.md not found at {notes}")
    text = notes.read_text(encoding="utf-8")
    assert all(f"`{name}`" in text for name in LIVE_SEARCH_FIELDS)
    assert LIVE_SEARCH_FIELDS <= KNOWN_FIELDS["contacts"]


def test_the_shipped_mapping_reads_only_known_fields() -> None:
    import yaml

    data = yaml.safe_load((REPO_ROOT / "dags" / "ghl_contacts_mapping.yaml").read_text(encoding="utf-8"))
    for entity in ("contacts", "tasks", "notes"):
        for spec in data[entity]["columns"].values():
            sources = spec if isinstance(spec, str) else spec.get("source", [])
            for source in [sources] if isinstance(sources, str) else sources:
                assert source.split(".")[0] in KNOWN_FIELDS[entity], (entity, source)


def test_did_you_mean() -> None:
    assert did_you_mean("emial", KNOWN_FIELDS["contacts"]) == "email"
    assert did_you_mean("EMAIL", KNOWN_FIELDS["contacts"]) == "email"
    assert did_you_mean("zzzz", KNOWN_FIELDS["contacts"]) is None
