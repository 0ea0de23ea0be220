"""SQL views over the reconcile tables: a 360-degree contact view and directories by business and
by tag (docs/leads.md, "Views"). The reconcile creates them after each run (``runner``).

Built with SQLAlchemy Core and compiled for the target's dialect, so one definition serves
SQLite and PostgreSQL (and the portable ones any database SQLAlchemy knows):

``ghl_contact_360``        one row per live contact: ``contact_id``, ``location_id``, ``full_name``,
                           ``first_name``, ``last_name``, ``email``, ``phone``, ``company_name``,
                           ``tags``, ``date_updated``, ``open_tasks`` (not completed, not deleted),
                           ``next_task_title`` / ``next_task_due`` (the open task due first),
                           ``notes`` (count), ``latest_note`` / ``latest_note_at`` (the newest note).
                           Appointments are not in it: the reconcile does not copy appointments
                           (``GHLGetAppointmentsOperator`` reads them per contact).
``ghl_directory_by_business``  live contacts with a company name: ``company_name``,
                           ``contacts_in_business`` and the contact's columns, one row per contact.
``ghl_directory_by_tag``   one row per (tag, live contact): ``tag`` and the contact's columns
                           (SQLite ``json_each``, PostgreSQL ``jsonb_array_elements_text``; other
                           databases: not created, a warning says so).

Columns the mapping does not have are NULL in the views. The views are re-created only when their
SQL changes (a hash kept in ``ghl_sync_state``), under the sink's exclusive lock, so parallel
locations do not collide. A failure never fails the reconcile: it becomes a report warning.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_provider_contacts.sync.schema import TABLES

if TYPE_CHECKING:
    from airflow_provider_contacts.sync.sinks import SqlSink

__all__ = ["VIEW_NAMES", "ensure_views", "view_statements"]

log = logging.getLogger(__name__)

VIEW_NAMES = ("ghl_contact_360", "ghl_directory_by_business", "ghl_directory_by_tag")
_STATE_LOCATION = "*"
_STATE_NAME = "views_hash"
_CONTACT_COLUMNS = ("first_name", "last_name", "full_name", "email", "phone", "company_name", "tags", "date_updated")


def _dialect(name: str) -> sa.engine.Dialect:
    from sqlalchemy.dialects import registry
    from sqlalchemy.engine.default import DefaultDialect

    try:
        return registry.load(name)()
    except Exception:  # noqa: BLE001 - a dialect SQLAlchemy does not know
        return DefaultDialect()


def _tables(sink: SqlSink) -> dict[str, sa.TableClause]:
    out = {}
    for entity, name in TABLES.items():
        columns = sink.mapping.columns(entity)
        out[entity] = sa.table(name, *(sa.column(c) for c in columns), schema=sink.schema)
    return out


def _col(table: sa.TableClause, name: str) -> sa.ColumnElement[Any]:
    return table.c[name] if name in table.c else sa.null()


def _contact_columns(c: sa.TableClause) -> list[sa.ColumnElement[Any]]:
    full = sa.func.coalesce(
        _col(c, "full_name"),
        sa.func.nullif(sa.func.trim(sa.func.coalesce(_col(c, "first_name"), "") + " " + sa.func.coalesce(_col(c, "last_name"), "")), ""),
    )
    return [
        c.c.id.label("contact_id"),
        c.c.location_id.label("location_id"),
        full.label("full_name"),
        *(_col(c, name).label(name) for name in _CONTACT_COLUMNS if name != "full_name"),
    ]


def _contact_360(t: dict[str, sa.TableClause]) -> sa.Select[Any]:
    c, tasks, notes = t["contacts"], t["tasks"], t["notes"]
    open_task = sa.and_(
        tasks.c.contact_id == c.c.id,
        tasks.c.deleted_at.is_(None),
        sa.or_(_col(tasks, "completed").is_(None), _col(tasks, "completed") == sa.false()),
    )
    live_note = sa.and_(notes.c.contact_id == c.c.id, notes.c.deleted_at.is_(None))
    next_task = sa.select(tasks.c.id).where(open_task).order_by(_col(tasks, "due_date").asc(), tasks.c.id).limit(1)
    latest = sa.select(notes.c.id).where(live_note).order_by(_col(notes, "date_added").desc(), notes.c.id.desc()).limit(1)
    t2 = tasks.alias("next_task")
    n2 = notes.alias("latest_note")
    return (
        sa.select(
            *_contact_columns(c),
            sa.select(sa.func.count()).select_from(tasks).where(open_task).scalar_subquery().label("open_tasks"),
            _col(t2, "title").label("next_task_title"),
            _col(t2, "due_date").label("next_task_due"),
            sa.select(sa.func.count()).select_from(notes).where(live_note).scalar_subquery().label("notes"),
            _col(n2, "body").label("latest_note"),
            _col(n2, "date_added").label("latest_note_at"),
        )
        .select_from(
            c.outerjoin(t2, t2.c.id == next_task.scalar_subquery()).outerjoin(n2, n2.c.id == latest.scalar_subquery())
        )
        .where(c.c.deleted_at.is_(None))
    )


def _by_business(t: dict[str, sa.TableClause]) -> sa.Select[Any]:
    c = t["contacts"]
    company = _col(c, "company_name")
    count = sa.func.count().over(partition_by=[c.c.location_id, company])
    return (
        sa.select(company.label("company_name"), count.label("contacts_in_business"), *[x for x in _contact_columns(c) if x.name != "company_name"])
        .where(c.c.deleted_at.is_(None), company.is_not(None), sa.func.trim(company) != "")
    )


def _by_tag(t: dict[str, sa.TableClause], dialect: str) -> sa.Select[Any] | None:
    c = t["contacts"]
    if "tags" in c.c:
        source: Any = c.c.tags
    else:
        source = None
    if dialect == "sqlite":
        each = (sa.func.json_each(source) if source is not None else sa.func.json_each(c.c.raw_json, "$.tags")).table_valued("value").alias("tag")
    elif dialect == "postgresql":
        arg = source if source is not None else c.c.raw_json.op("->")("tags")
        # a JSON null or scalar would make jsonb_array_elements_text raise: read it as no tags
        arg = sa.case((sa.func.jsonb_typeof(arg) == "array", arg), else_=sa.literal_column("'[]'::jsonb"))
        each = sa.func.jsonb_array_elements_text(arg).table_valued("value").alias("tag")
    else:
        return None
    return (
        sa.select(each.c.value.label("tag"), *_contact_columns(c))
        .select_from(c)
        .join(each, sa.true())
        .where(c.c.deleted_at.is_(None))
    )


def view_statements(sink: SqlSink) -> dict[str, str | None]:
    """View name -> its ``SELECT`` compiled for the sink's database (``None``: not available there)."""
    dialect = _dialect(sink.dialect_name)
    tables = _tables(sink)
    selects = {
        "ghl_contact_360": _contact_360(tables),
        "ghl_directory_by_business": _by_business(tables),
        "ghl_directory_by_tag": _by_tag(tables, sink.dialect_name),
    }
    return {
        name: None if select is None else str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        for name, select in selects.items()
    }


def ensure_views(sink: SqlSink, report: Any = None) -> list[str]:
    """Create or replace the views when their SQL changed (or one is missing); returns the names
    created. Problems become warnings in ``report`` (a ``RunReport``) and the log, never errors."""
    try:
        statements = view_statements(sink)
        digest = hashlib.sha256(repr(sorted(statements.items())).encode()).hexdigest()[:16]
        created: list[str] = []
        with sink.transaction(exclusive=True) as tx:
            stored = tx.get_state(_STATE_LOCATION, _STATE_NAME)
            missing = [n for n, sql in statements.items() if sql is not None and tx.column_names(n) is None]
            if stored == digest and not missing:
                return []
            for name, sql in statements.items():
                tx.execute(f"DROP VIEW IF EXISTS {sink.table(name)}")
                if sql is None:
                    continue
                tx.execute(f"CREATE VIEW {sink.table(name)} AS {sql}")
                created.append(name)
            from airflow_provider_contacts.sync.sinks import utcnow

            tx.set_state(_STATE_LOCATION, {_STATE_NAME: digest}, utcnow())
        unavailable = [n for n, sql in statements.items() if sql is None]
        if unavailable and report is not None:
            report.warnings.append(
                f"view(s) {unavailable} need JSON array functions this database ({sink.dialect_name}) lacks here; not created"
            )
        log.info("views created: %s", ", ".join(created))
        return created
    except Exception as exc:  # noqa: BLE001 - the views never fail a reconcile
        message = f"the views {list(VIEW_NAMES)} could not be created: {type(exc).__name__}: {str(exc).strip()[:300]}"
        log.warning(message)
        if report is not None:
            report.warnings.append(message)
        return []
