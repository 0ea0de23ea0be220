"""OpenLineage for HighLevel reads and writes: datasets, hook-level lineage, operator facets.

When ``apache-airflow-providers-openlineage`` is installed (and configured with a transport), the
events it emits for this provider's tasks carry:

* **inputs / outputs on the HighLevel side**: one dataset per location and entity, namespace
  ``highlevel://<API host>`` (``highlevel://services.leadconnectorhq.com``; the port too when it is
  not the scheme's default), name ``locations/<location id>/<entity>`` with ``entity`` one of
  ``contacts``, ``tasks``, ``notes``, ``appointments``;
* **outputs on the SQL side** (the reconciliation's target tables): the naming of the OpenLineage
  spec and of the SQL providers' converters, from the target connection's SQLAlchemy URL
  (``hook.get_uri()``, credentials never used): PostgreSQL ``postgres://<host>:<port>`` /
  ``<database>.<schema>.<table>`` (schema ``public`` by default), MySQL ``mysql://<host>:<port>``
  / ``<database>.<table>``, SQL Server ``mssql://<host>:<port>`` / ``<database>.<schema>.<table>``,
  SQLite ``sqlite://<absolute file path>`` / ``main.<table>``, any other backend
  ``<backend>://<host>[:<port>]`` / ``[<database>.][<schema>.]<table>``.

How they get there, as Airflow's own providers do it:

* the reconciliation (a ``@task``, which the OpenLineage provider handles with its Python
  extractor and then Airflow's **hook lineage collector**) reports its inputs with the
  ``ContactsHook`` and its outputs with the target ``DbApiHook`` as lineage context
  (:func:`report_reconcile_lineage`). The collector holds Airflow assets: ``highlevel://...`` for
  the inputs and ``highlevel-target://...`` for the outputs, whose ``extra`` carries the
  OpenLineage namespace and name; this provider registers both schemes (``asset-uris`` in its
  provider info: :func:`sanitize_uri`, :func:`convert_asset_to_openlineage`) so the OpenLineage
  provider turns them into the datasets above;
* the operators that read or write HighLevel implement ``get_openlineage_facets_on_complete``
  (:func:`operator_lineage`): a read operator's input, a write operator's output.

Without the OpenLineage provider nothing is emitted and nothing fails: Airflow's collector is a
no-op while no lineage reader is registered, and :func:`operator_lineage` returns ``None`` when
``airflow.providers.openlineage`` cannot be imported. No token, secret or record content is ever
part of a dataset.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

if TYPE_CHECKING:
    from airflow.sdk import Asset

__all__ = [
    "HIGHLEVEL_SCHEME",
    "TARGET_SCHEME",
    "convert_asset_to_openlineage",
    "highlevel_dataset",
    "operator_entity",
    "operator_lineage",
    "report_reconcile_lineage",
    "sanitize_uri",
    "sql_dataset",
]

log = logging.getLogger(__name__)

#: Asset URI scheme of HighLevel datasets: ``highlevel://<host>/locations/<id>/<entity>``.
HIGHLEVEL_SCHEME = "highlevel"
#: Asset URI scheme of the reconciliation's SQL outputs (``extra`` holds the OpenLineage names).
TARGET_SCHEME = "highlevel-target"
_OL_KEY = "openlineage"
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgres": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
#: SQLAlchemy backend name -> OpenLineage namespace scheme.
_OL_SCHEMES = {"postgresql": "postgres", "mariadb": "mysql", "mssql": "mssql"}
#: Default schema per OpenLineage scheme when the sink has none (``None``: the name has no schema).
_DEFAULT_SCHEMAS: dict[str, str | None] = {"postgres": "public", "mssql": "dbo", "mysql": None, "sqlite": "main"}


# -- datasets --------------------------------------------------------------------------------
def _host_port(base_url: str) -> str:
    parts = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and port != _DEFAULT_PORTS.get(parts.scheme):
        return f"{host}:{port}"
    return host


def highlevel_dataset(base_url: str, location_id: str, entity: str) -> tuple[str, str]:
    """The OpenLineage (namespace, name) of ``entity`` of a HighLevel location:
    ``("highlevel://services.leadconnectorhq.com", "locations/<id>/contacts")``. Credentials and
    paths in ``base_url`` are left out."""
    return f"{HIGHLEVEL_SCHEME}://{_host_port(base_url)}", f"locations/{location_id}/{entity}"


def sql_dataset(hook: Any, table: str, schema: str | None = None) -> tuple[str, str]:
    """The OpenLineage (namespace, name) of ``table`` in the database of the common-sql ``hook``
    (see the module docstring), from its SQLAlchemy URL (``hook.get_uri()``).

    :raises ValueError: the hook's URI cannot be parsed.
    """
    from sqlalchemy.engine import make_url

    url = make_url(hook.get_uri())
    backend = url.get_backend_name()
    scheme = _OL_SCHEMES.get(backend, backend)
    if scheme == "sqlite":
        path = url.database or ""
        namespace = f"sqlite://{os.path.abspath(path) if path and path != ':memory:' else ':memory:'}"
        return namespace, f"{schema or 'main'}.{table}"
    host = (url.host or "localhost").lower()
    port = url.port or _DEFAULT_PORTS.get(scheme)
    namespace = f"{scheme}://{host}" + (f":{port}" if port else "")
    schema = schema or _DEFAULT_SCHEMAS.get(scheme)
    if scheme == "mysql":  # MySQL's schema is its database
        schema = None
    parts = [p for p in (url.database, schema, table) if p]
    return namespace, ".".join(parts)


# -- Airflow asset URI handler and OpenLineage converter (provider info "asset-uris") ----------
def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI normaliser for ``highlevel://`` and ``highlevel-target://`` assets: lower-case
    host, no credentials, no query or fragment.

    :raises ValueError: no host, or (``highlevel``) a path that is not ``/locations/<id>/<entity>``.
    """
    if not uri.netloc:
        raise ValueError(f"{uri.scheme} asset URI needs a host: {uri.scheme}://<host>/...")
    netloc = (uri.hostname or "").lower() + (f":{uri.port}" if uri.port else "")
    if uri.scheme == HIGHLEVEL_SCHEME:
        parts = [p for p in uri.path.split("/") if p]
        if len(parts) != 3 or parts[0] != "locations":
            raise ValueError(f"highlevel asset URI path must be /locations/<location id>/<entity>, not {uri.path!r}")
    return uri._replace(netloc=netloc, query="", fragment="")


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """The OpenLineage ``Dataset`` of a ``highlevel://`` or ``highlevel-target://`` asset (the
    OpenLineage provider calls this through the provider info's ``to_openlineage_converter``)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    names = (asset.extra or {}).get(_OL_KEY)
    if isinstance(names, Mapping) and names.get("namespace") and names.get("name"):
        return Dataset(namespace=str(names["namespace"]), name=str(names["name"]))
    parsed = urlsplit(asset.uri)
    if parsed.scheme != HIGHLEVEL_SCHEME:
        raise ValueError(f"{asset.uri!r}: a {TARGET_SCHEME} asset needs extra['{_OL_KEY}'] with namespace and name")
    return Dataset(namespace=f"{HIGHLEVEL_SCHEME}://{parsed.netloc}", name=unquote(parsed.path.lstrip("/")))


def _highlevel_uri(base_url: str, location_id: str, entity: str) -> str:
    return f"{HIGHLEVEL_SCHEME}://{_host_port(base_url)}/locations/{quote(location_id, safe='')}/{entity}"


def _target_uri(namespace: str, name: str) -> str:
    # namespace "postgres://db.example.com:5432" -> highlevel-target://postgres/db.example.com:5432/<name>
    scheme, _, authority = namespace.partition("://")
    return f"{TARGET_SCHEME}://{scheme or 'sql'}/{quote(authority, safe=':')}/{quote(name, safe='.')}"


# -- hook-level lineage (the reconciliation) ---------------------------------------------------
def _collector() -> Any | None:
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
    except ImportError:
        return None
    try:
        return get_hook_lineage_collector()
    except Exception:  # noqa: BLE001 - lineage never fails a run
        log.debug("no hook lineage collector", exc_info=True)
        return None


def report_reconcile_lineage(
    source_hook: Any,
    location_id: str,
    target_hook: Any,
    tables: Iterable[str],
    *,
    schema: str | None = None,
    entities: Iterable[str] = ("contacts", "tasks", "notes"),
) -> bool:
    """Report a reconciliation's datasets to Airflow's hook lineage collector: the location's
    ``entities`` read through ``source_hook`` (a ``ContactsHook``; its ``base_url``), the target
    ``tables`` (in ``schema``) written through ``target_hook`` (a common-sql ``DbApiHook``).

    Returns whether anything was reported; never raises (lineage must not fail a sync). A no-op
    (``False``) when the common-compat provider is missing; the collector itself does nothing
    while no lineage reader (the OpenLineage provider) is installed.
    """
    collector = _collector()
    if collector is None:
        return False
    try:
        base_url = str(source_hook.base_url)
        for entity in entities:
            namespace, name = highlevel_dataset(base_url, location_id, entity)
            collector.add_input_asset(
                context=source_hook,
                uri=_highlevel_uri(base_url, location_id, entity),
                asset_extra={_OL_KEY: {"namespace": namespace, "name": name}},
            )
        for table in tables:
            namespace, name = sql_dataset(target_hook, table, schema)
            collector.add_output_asset(
                context=target_hook,
                uri=_target_uri(namespace, name),
                asset_extra={_OL_KEY: {"namespace": namespace, "name": name}},
            )
    except Exception:  # noqa: BLE001 - lineage never fails a sync
        log.warning("could not report the reconciliation's lineage", exc_info=True)
        return False
    return True


# -- operator facets ---------------------------------------------------------------------------
_READ_PREFIXES = ("get-", "search-")


def operator_entity(operation_id: str) -> tuple[str, bool]:
    """The HighLevel entity an operation works on (``contacts``, ``tasks``, ``notes``,
    ``appointments``) and whether it only reads (``get-*``, ``search-*``), from its contacts.json
    ``operationId``: ``get-all-notes`` -> (``notes``, True), ``create-task`` -> (``tasks``, False);
    every other operation changes contacts (tags, followers, campaigns, workflows, businesses)."""
    op = operation_id.lower()
    reads = op.startswith(_READ_PREFIXES)
    for word, entity in (("appointment", "appointments"), ("note", "notes"), ("task", "tasks")):
        if word in op:
            return entity, reads
    return "contacts", reads


def operator_lineage(operator: Any) -> Any | None:
    """The ``OperatorLineage`` of a HighLevel operator after it ran: its location's entity (see
    :func:`operator_entity`) as input when it reads, as output when it writes. ``None`` without
    the OpenLineage provider, or when the operator has no hook, location or ``operation_id``."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    try:
        operation_id = getattr(operator, "operation_id", None)
        hook = operator.hook
        location_id = getattr(operator, "location_id", None) or getattr(hook, "location_id", None)
        if not operation_id or not location_id:
            return None
        entity, reads = operator_entity(operation_id)
        namespace, name = highlevel_dataset(str(hook.base_url), str(location_id), entity)
    except Exception:  # noqa: BLE001 - lineage never fails a task
        log.debug("no lineage for %s", getattr(operator, "task_id", operator), exc_info=True)
        return None
    dataset = Dataset(namespace=namespace, name=name)
    return OperatorLineage(inputs=[dataset]) if reads else OperatorLineage(outputs=[dataset])
