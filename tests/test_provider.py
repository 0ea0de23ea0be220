"""Airflow discovers the package as a provider and shows the HighLevel connection form."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_contacts import CONN_FIELDS, get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _airflow(*args: str) -> str:
    proc = subprocess.run([AIRFLOW, *args, "--output", "plain"], capture_output=True, text=True, env=os.environ, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_package_name_is_the_distribution_name() -> None:
    info = get_provider_info()
    dist = importlib.metadata.distribution("airflow-provider-contacts")
    assert info["package-name"] == dist.metadata["Name"] == "airflow-provider-contacts"
    assert info["versions"][0] == dist.version


def test_provider_is_registered_through_its_entry_point() -> None:
    eps = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.value == "airflow_provider_contacts:get_provider_info"]
    assert len(ours) == 1
    assert ours[0].load()()["package-name"] == "airflow-provider-contacts"


def test_every_module_listed_in_the_provider_info_imports() -> None:
    info = get_provider_info()
    modules = [m for section in ("hooks", "operators", "sensors", "triggers") for entry in info[section] for m in entry["python-modules"]]
    for module in modules:
        importlib.import_module(module)
    hook_path = info["connection-types"][0]["hook-class-name"]
    module, _, cls = hook_path.rpartition(".")
    hook_cls = getattr(importlib.import_module(module), cls)
    assert hook_cls.conn_type == "ghl"
    assert hook_cls.default_conn_name == "ghl_default"


def _public_classes(module_name: str, base: type) -> list[str]:
    module = importlib.import_module(module_name)
    return [
        name
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, base)
        and obj.__module__ == module_name
        and not name.startswith("_")
        and "Base" not in name
        and not name.endswith("Mixin")
        # an operator class is a concrete one when it names the API operation it wraps
        and (not issubclass(obj, _operator_base()) or _is_sensor(obj) or bool(getattr(obj, "operation_id", None)))
    ]


def _operator_base() -> type:
    from airflow.sdk import BaseOperator

    return BaseOperator


def _is_sensor(cls: type) -> bool:
    from airflow.sdk import BaseSensorOperator

    return issubclass(cls, BaseSensorOperator)


def test_every_module_with_operators_sensors_or_triggers_is_listed() -> None:
    """A module of operators, sensors or triggers missing from the provider info is invisible to users."""
    from airflow.sdk import BaseOperator
    from airflow.triggers.base import BaseTrigger

    info = get_provider_info()
    root = Path(importlib.import_module("airflow_provider_contacts").__file__).parent
    for section, base in (("operators", BaseOperator), ("sensors", BaseOperator), ("triggers", BaseTrigger)):
        listed = set(info[section][0]["python-modules"])
        present = {
            name
            for p in (root / section).glob("*.py")
            if _public_classes(name := f"airflow_provider_contacts.{section}.{p.stem}", base)
        }
        assert present <= listed, f"{section}: not in get_provider_info(): {sorted(present - listed)}"
        assert all(_public_classes(m, base) for m in listed), f"{section}: a listed module defines none"


def test_airflow_lists_the_provider() -> None:
    assert "airflow-provider-contacts" in _airflow("providers", "list")


def test_connection_form_shows_the_ghl_fields_and_relabels_host_and_password() -> None:
    widgets = _airflow("providers", "widgets")
    for name in CONN_FIELDS:
        assert f"extra__ghl__{name}" in widgets, name
    behaviours = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
    assert behaviours["relabeling"] == {"host": "Base URL", "password": "Access token"}
    assert CONN_FIELDS["client_secret"]["schema"]["format"] == "password"
    assert "ghl" in _airflow("providers", "behaviours")


@pytest.mark.parametrize("secret_field", ["client_secret", "refresh_token"])
def test_secret_fields_are_password_fields(secret_field: str) -> None:
    assert CONN_FIELDS[secret_field]["schema"]["format"] == "password"
