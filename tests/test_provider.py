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


# -- layout: one place per subject, no way back up -------------------------------------------------
ROOT = Path(importlib.import_module("airflow_provider_contacts").__file__).parent
#: The modules below operators, sensors and triggers that they share.
SHARED = ("params", "results", "failures", "redaction", "task_mixin")


def _imports(path: Path) -> set[str]:
    """The provider modules ``path`` imports (anywhere in it, lazily too)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow_provider_contacts"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("airflow_provider_contacts"))
    return found


def _is_module(name: str) -> bool:
    """Whether ``name`` (``from package import name``) is a module of the provider."""
    return (ROOT.parent / name.replace(".", "/")).with_suffix(".py").exists()


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)


def test_sensors_and_triggers_import_nothing_from_the_operators_and_triggers_only_go_through_the_sensor_sources() -> None:
    for path in (ROOT / f"{m}.py" for m in SHARED):  # below all three
        layers = tuple(f"airflow_provider_contacts.{layer}." for layer in ("operators", "sensors", "triggers"))
        assert not {m for m in _imports(path) if m.startswith(layers)}, path.name
    for layer in ("sensors", "triggers"):
        for path in (ROOT / layer).glob("*.py"):
            imported = _imports(path)
            assert not {m for m in imported if m.startswith("airflow_provider_contacts.operators")}, path.name
            if layer == "triggers":  # the hook's reads reach a trigger only through GHLAsyncHookSource
                assert not {m for m in imported if m.startswith("airflow_provider_contacts.hooks")}, path.name


def test_the_modules_of_operators_sensors_triggers_and_their_shared_checks_import_no_circle() -> None:
    layers = [p for layer in ("operators", "sensors", "triggers") for p in (ROOT / layer).glob("*.py")]
    paths = [*(ROOT / f"{m}.py" for m in SHARED), *layers]
    graph = {_module(p): {m for m in _imports(p) if m != _module(p)} for p in paths}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module in done or module not in graph:
            return
        for imported in graph[module]:
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def _defined(module_name: str) -> list[object]:
    """The classes and functions ``module_name`` defines itself."""
    import inspect

    module = importlib.import_module(module_name)
    return [o for o in vars(module).values() if (inspect.isclass(o) or inspect.isfunction(o)) and o.__module__ == module_name]


def test_the_triggers_package_holds_triggers_only_and_operators_base_operator_base_classes_only() -> None:
    from airflow.sdk import BaseOperator
    from airflow.triggers.base import BaseTrigger

    for path in (ROOT / "triggers").glob("*.py"):
        defined = [o for o in _defined(_module(path)) if isinstance(o, type)]
        assert defined and all(issubclass(c, BaseTrigger) for c in defined), path.name
    defined = _defined("airflow_provider_contacts.operators.base")
    assert defined and all(isinstance(o, type) and issubclass(o, BaseOperator) for o in defined)


def test_renamed_public_classes_keep_their_old_names() -> None:
    from airflow_provider_contacts.sensors import conditions, sources

    renamed = {
        conditions: {
            "Condition": "GHLCondition",
            "ConditionSource": "GHLConditionSource",
            "ContactsChanged": "GHLContactsChangedCondition",
            "TaskCreated": "GHLTaskCreatedCondition",
            "TaskCompleted": "GHLTaskCompletedCondition",
            "TaskDue": "GHLTaskDueCondition",
            "NoteAdded": "GHLNoteAddedCondition",
            "TasksChanged": "GHLTaskChangedCondition",
            "NotesChanged": "GHLNoteChangedCondition",
        },
        sources: {"HookSource": "GHLHookSource"},
    }
    for module, names in renamed.items():
        for old, new in names.items():
            assert getattr(module, old) is getattr(module, new), old
            assert new in module.__all__


def _top_level_imports(path: Path) -> set[str]:
    """The top-level packages ``path`` imports anywhere in it (lazily too); relative imports are
    its own package."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("airflow_provider_contacts", "ghl_sandbox"), ("ghl_sandbox", "airflow_provider_contacts")],
)
def test_the_provider_and_the_sandbox_import_nothing_from_each_other(package: str, forbidden: str) -> None:
    """The sandbox is its own package beside the provider (a stand-in server that shared the
    client's code could not catch their disagreements), and the provider never needs it."""
    offenders = sorted(
        str(path.relative_to(ROOT.parent))
        for path in (ROOT.parent / package).rglob("*.py")
        if forbidden in _top_level_imports(path)
    )
    assert not offenders, f"{package} imports {forbidden} in {offenders}"


def test_installing_the_provider_registers_no_pytest_fixtures() -> None:
    """The sandbox's fixtures are opt-in (``pytest_plugins = ["ghl_sandbox.pytest_plugin"]`` or
    ``-p ghl_sandbox.pytest_plugin``), not forced into every pytest session of an environment."""
    plugins = [ep.value for ep in importlib.metadata.entry_points(group="pytest11")]
    assert not [value for value in plugins if value.startswith(("ghl_sandbox", "airflow_provider_contacts"))]


def test_no_module_of_the_provider_imports_itself_back_in_a_circle() -> None:
    """Issue #9: no import circle anywhere in the provider (lazy imports count too)."""
    graph = {}
    for path in ROOT.rglob("*.py"):
        name = _module(path).removesuffix(".__init__")
        graph[name] = {m for m in _imports(path) if m != name and not path.name == "__init__.py"}
    circles: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, trail: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt == start:
                circles.add(tuple(sorted(trail)))
            elif nxt in graph and nxt not in trail and len(trail) < 8:
                walk(start, nxt, [*trail, nxt])

    for name in graph:
        walk(name, name, [name])
    assert not circles, sorted(circles)
