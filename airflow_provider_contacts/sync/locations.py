"""Which locations a reconcile run syncs: :func:`plan_locations` (the DAG's ``resolve_locations`` task).

* **A location connection** (a Private Integration token or a ``Location`` OAuth install): the
  ``location_ids`` param, else the connection's ``location_id`` extra.
* **An agency connection** (extras ``auth_type: oauth``, ``user_type: Company``, ``company_id``,
  ``app_id``, ``client_id``, ``client_secret``, ``refresh_token``) without a ``location_id`` extra:
  the locations the app is installed on, listed with the agency token
  (``GET /oauth/installedLocations``, every page; :meth:`GHLContactsHook.installed_locations`),
  narrowed by the ``location_ids`` param (then a filter: requested ids that are not installed are
  skipped and reported) and the ``location_name_pattern`` param. Each is synced by its own mapped
  task with its own location token. A location installed later is in the next run's listing; a
  location synced into this target before whose app was uninstalled since is reported
  (``uninstalled``) and its rows are left as they are (nothing is deleted or marked).

  When ``location_ids`` are given and the agency token may not list installations (it lacks
  ``oauth.readonly``, or the connection lacks ``company_id``/``app_id``), the ids are synced as
  given, with a warning.

The plan (:class:`LocationPlan`) is small JSON: the task returns the ids (one mapped task each) and
pushes the plan to XCom under :data:`PLAN_XCOM_KEY` for the run report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["PLAN_XCOM_KEY", "LocationPlan", "known_target_locations", "plan_locations"]

#: XCom key under which ``resolve_locations`` pushes :meth:`LocationPlan.to_dict`.
PLAN_XCOM_KEY = "location_plan"


@dataclass
class LocationPlan:
    """What a run syncs and why.

    :ivar locations: location ids to sync, one mapped task each, in the API's order.
    :ivar source: ``param`` (the ``location_ids`` param), ``connection`` (its ``location_id``
        extra) or ``discovery`` (an agency connection's installed locations).
    :ivar names: location id -> name, for discovered locations.
    :ivar not_installed: requested ids (``location_ids``) where the app is not installed: skipped.
    :ivar uninstalled: locations this target holds rows of whose app was uninstalled since: not
        synced, rows left as they are.
    :ivar warnings: one line each, for the run report.
    """

    locations: list[str]
    source: str
    names: dict[str, str | None] = field(default_factory=dict)
    not_installed: list[str] = field(default_factory=list)
    uninstalled: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (XCom)."""
        return asdict(self)


def known_target_locations(target_conn_id: str, mapping_path: str | Path, target_schema: str | None) -> set[str]:
    """Locations the target holds a sync state of (table ``ghl_sync_state``); empty for a new target."""
    from airflow_provider_contacts.sync.mapping import FieldMapping
    from airflow_provider_contacts.sync.schema import STATE_TABLE
    from airflow_provider_contacts.sync.sinks import SqlSink
    from airflow_provider_contacts.sync.target import get_target_hook

    with SqlSink(get_target_hook(target_conn_id), FieldMapping.load(mapping_path), schema=target_schema or None) as sink:
        with sink.transaction() as tx:
            if tx.column_names(STATE_TABLE) is None:
                return set()
            return set(tx.all_states("last_run")) | set(tx.all_states("watermark"))


def _is_agency(settings: Any) -> bool:
    return settings.auth_type == "oauth" and settings.user_type == "Company"


def plan_locations(
    values: Mapping[str, Any],
    *,
    mapping_path: str | Path,
    hook: Any = None,
) -> LocationPlan:
    """The locations of a run from the DAG's effective params (see the module docstring).

    :param values: :func:`~airflow_provider_contacts.sync.dag.effective_params` of the run
        (``source_conn_id``, ``target_conn_id``, ``target_schema``, ``location_ids``,
        ``location_name_pattern``).
    :param mapping_path: the run's mapping (to open the target for the uninstalled check).
    :param hook: the source hook (default: ``GHLContactsHook(source_conn_id)``).
    :raises GHLAuthError: an agency Private Integration token and no location ids (with the fix).
    :raises GHLConfigError: nothing says which location to sync.
    """
    from airflow_provider_contacts.auth import agency_private_token_error
    from airflow_provider_contacts.errors import GHLConfigError, GHLScopeError
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

    conn_id = values["source_conn_id"]
    hook = hook or GHLContactsHook(ghl_conn_id=conn_id)
    ids: list[str] | None = values.get("location_ids")
    pattern: str | None = values.get("location_name_pattern")
    try:
        settings = hook.settings
    except Exception:
        if ids and not pattern:  # as before discovery existed: each location's task reports the problem
            return LocationPlan(list(ids), "param")
        raise
    agency = _is_agency(settings) and not settings.location_id
    if not agency:
        plan_warnings = []
        if pattern:
            plan_warnings.append(
                f"location_name_pattern {pattern!r} is ignored: connection {conn_id!r} is not an agency "
                "connection without a location_id (user_type 'Company', auth_type 'oauth')"
            )
            log.warning("%s", plan_warnings[-1])
        if ids:
            return LocationPlan(list(ids), "param", warnings=plan_warnings)
        if settings.location_id:
            return LocationPlan([str(settings.location_id)], "connection", warnings=plan_warnings)
        if settings.user_type == "Company" and settings.auth_type != "oauth":
            raise agency_private_token_error(conn_id, "discovering the agency's installed locations")
        raise GHLConfigError(
            f"connection {conn_id!r} has no extra 'location_id'; set it, pass the location_ids param, or "
            "use an agency connection (extras auth_type='oauth', user_type='Company', company_id, app_id, "
            "client_id, client_secret, refresh_token) to sync every location the app is installed on"
        )

    try:
        installed = hook.installed_locations()
    except (GHLScopeError, GHLConfigError) as exc:
        if not ids:
            raise
        warning = (
            f"could not list the agency's installed locations ({exc}); syncing the "
            f"location_ids as given: {', '.join(ids)}"
        )
        log.warning("%s", warning)
        return LocationPlan(list(ids), "param", warnings=[warning])
    from airflow_provider_contacts.hooks.agency_ops import name_matches

    installed_ids = [loc.id for loc in installed]
    plan = LocationPlan([], "discovery")
    wanted = set(ids) if ids else None
    for loc in installed:
        if wanted is not None and loc.id not in wanted:
            continue
        if not name_matches(pattern, loc.name):
            continue
        plan.locations.append(loc.id)
        plan.names[loc.id] = loc.name
    if ids:
        plan.not_installed = [x for x in ids if x not in set(installed_ids)]
        if plan.not_installed:
            plan.warnings.append(
                f"the app is not installed on requested location(s) {', '.join(plan.not_installed)}: skipped. "
                "Install it there from the agency's Marketplace page, or remove them from location_ids"
            )
    plan.uninstalled = _uninstalled(hook, values, mapping_path, set(installed_ids), plan.warnings)
    if plan.uninstalled:
        plan.warnings.append(
            f"the app was uninstalled from location(s) {', '.join(plan.uninstalled)} (synced into this "
            "target before): not synced; their rows are left as they are"
        )
    for warning in plan.warnings:
        log.warning("%s", warning)
    log.info(
        "Agency connection %r: the app is installed on %d location(s); syncing %d%s",
        conn_id, len(installed_ids), len(plan.locations),
        f" (name pattern {pattern!r})" if pattern else "",
    )
    if not plan.locations:
        plan.warnings.append("no installed location matches: nothing to sync")
        log.warning("Agency connection %r: no installed location matches; nothing to sync", conn_id)
    return plan


def _uninstalled(hook: Any, values: Mapping[str, Any], mapping_path: str | Path, installed: set[str],
                 warnings: list[str]) -> list[str]:
    """Locations with rows in the target, of this agency, no longer installed (a failure to tell is
    a warning, never a failed run: the locations to sync are known)."""
    try:
        known = known_target_locations(values["target_conn_id"], mapping_path, values.get("target_schema"))
    except Exception as exc:  # noqa: BLE001 - the reconcile tasks report the target's problem themselves
        log.info("Could not read the target's synced locations (%s); the uninstalled check is skipped", type(exc).__name__)
        return []
    candidates = known - installed
    if not candidates:
        return []
    try:
        company = {loc.id: loc for loc in hook.installed_locations(installed_only=False)}
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"could not check whether locations {', '.join(sorted(candidates))} are still installed ({exc})")
        return []
    # Only this agency's locations: the target may hold other connections' locations too.
    return sorted(x for x in candidates if x in company and company[x].isInstalled is not True)
