"""Shared base of the HighLevel Contacts operators.

Every operator wraps exactly one Contacts API operation (one ``operationId`` of contacts.json) and
one :class:`~airflow_provider_contacts.hooks.contacts.ContactsHook` method. The base class owns
what they all share:

* ``ghl_conn_id`` (default ``ghl_default``) and an optional ``location_id`` override, both
  templated, and the cached :attr:`GHLBaseOperator.hook`;
* input checks that run *before* any request: ids must be non-empty strings without ``/``, bodies
  (dicts, or JSON strings after templating) are validated with the hook's pydantic request models
  so that the error names the field and the fix (:class:`GHLInputError`, which fails the task
  without retries - retrying cannot fix a bad input);
* result shaping: a small JSON-serialisable dict for XCom (ids, counts, key fields), never a
  whole location;
* what it shares with the sensors (:class:`GHLTaskMixin`): errors no retry can cure fail the task
  at once (:mod:`.failures`: not found, missing scope, other location, validation, configuration),
  transient ones stay retryable; credentials inside URLs are masked in logs and rendered fields
  (:mod:`.redaction`).

A concrete operator declares ``operation_id``, its templated parameters, and implements
:meth:`GHLBaseOperator.call` (the one hook call) and, if needed, :meth:`GHLBaseOperator.shape`.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.errors import GHLValidationError
from airflow_provider_contacts.operators.failures import fail_fast, is_not_found
from airflow_provider_contacts.operators.redaction import mask_url_credentials

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.models import RequestModel

M = TypeVar("M", bound="RequestModel")


class GHLInputError(GHLValidationError, AirflowFailException):
    """An operator or sensor parameter is invalid; raised before any request is sent.

    It is a :class:`~airflow_provider_contacts.errors.GHLValidationError` (``status`` is ``None``)
    and an ``AirflowFailException``, so the task fails at once instead of retrying an input that
    cannot succeed.
    """


def input_error(owner: str, param: str, problem: str, operation: str | None = None) -> GHLInputError:
    """Build the error for a bad parameter: ``"<owner>: parameter '<param>': <problem>"``."""
    return GHLInputError(f"{owner}: parameter '{param}': {problem}", operation=operation)


def check_id(owner: str, param: str, value: Any, operation: str | None = None) -> str:
    """Return ``value`` as a clean id, or raise :class:`GHLInputError` naming ``param``.

    Ids are interpolated into URL paths, so they must be non-empty strings without ``/``, ``?`` or
    ``#``; surrounding whitespace (a common templating artefact) is stripped.
    """
    if isinstance(value, (int,)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise input_error(
            owner,
            param,
            f"needs a HighLevel id (a non-empty string), got {value!r}; pass the id, e.g. "
            "\"{{ ti.xcom_pull(task_ids='create_contact')['id'] }}\"",
            operation,
        )
    text = value.strip()
    if any(ch in text for ch in "/?#") or any(ch.isspace() for ch in text):
        raise input_error(owner, param, f"{text!r} is not an id (it contains '/', '?', '#' or spaces)", operation)
    return text


def check_id_list(owner: str, param: str, values: Any, operation: str | None = None) -> list[str]:
    """Return ``values`` (a list, or a JSON list / comma-separated string) as a list of clean ids."""
    items = coerce_list(owner, param, values, operation)
    if not items:
        raise input_error(owner, param, "needs at least one id", operation)
    return [check_id(owner, f"{param}[{i}]", v, operation) for i, v in enumerate(items)]


def coerce_list(owner: str, param: str, values: Any, operation: str | None = None) -> list[Any]:
    """A list from a list/tuple/set, a JSON or Python list literal, or a comma-separated string."""
    if values is None:
        return []
    if isinstance(values, str):
        text = values.strip()
        if text.startswith("["):
            parsed = _parse_literal(text)
            if not isinstance(parsed, list):
                raise input_error(owner, param, f"{text!r} is not a JSON list", operation)
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(values, (list, tuple, set, frozenset)):
        return list(values)
    raise input_error(owner, param, f"needs a list, got {type(values).__name__}", operation)


def _parse_literal(text: str) -> Any:
    """Parse a JSON text, or a Python literal (what non-native Jinja renders a dict/list into)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return _UNPARSEABLE


_UNPARSEABLE = object()


def coerce_mapping(owner: str, param: str, value: Any, operation: str | None = None) -> dict[str, Any]:
    """A dict from a mapping, a pydantic model, or a JSON object string (rendered templates)."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True, by_alias=True)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        parsed = _parse_literal(value.strip())
        if isinstance(parsed, dict):
            return parsed
        raise input_error(
            owner,
            param,
            f"must be a JSON object (a dict), got the string {value[:80]!r}; pass a dict or a JSON "
            "object, or set render_template_as_native_obj=True on the DAG for templated dicts",
            operation,
        )
    if value is None:
        return {}
    raise input_error(owner, param, f"must be a dict, got {type(value).__name__}", operation)


def validate_request(
    owner: str, param: str, model: type[M], value: Any, operation: str | None = None
) -> M:
    """Validate ``value`` against the hook's request model; errors name ``param`` and each field."""
    from airflow_provider_contacts.models import validate_body

    data = value if isinstance(value, model) else coerce_mapping(owner, param, value, operation)
    try:
        return validate_body(model, data, operation or owner)
    except GHLValidationError as exc:
        raise input_error(owner, param, exc.message, operation) from None


def validate_filters(owner: str, param: str, filters: Any, operation: str | None = None) -> list[dict[str, Any]]:
    """Advanced-search filters (list, or JSON list) validated one by one with the hook's models.

    Each item is a filter ``{"field", "operator", "value"}`` or a group ``{"group", "filters"}``;
    returns the JSON payloads. Errors name ``param``, the item index and the field.
    """
    from airflow_provider_contacts.models import SearchFilter, SearchFilterGroup

    out = []
    for i, item in enumerate(coerce_list(owner, param, filters, operation)):
        model = SearchFilterGroup if isinstance(item, Mapping) and "group" in item else SearchFilter
        out.append(validate_request(owner, f"{param}[{i}]", model, item, operation).payload())
    return out


def to_jsonable(value: Any) -> Any:
    """Turn hook results (pydantic models, lists of them, datetimes) into JSON-able data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def succeeded(result: Any) -> bool:
    """Whether a hook result reports success (``True``, or a ``succeded``/``success`` flag)."""
    if isinstance(result, bool):
        return result
    data = to_jsonable(result)
    if isinstance(data, Mapping):
        for key in ("succeded", "succeeded", "success"):
            if key in data:
                return bool(data[key])
    return result is not None


def clean_location_id(location_id: Any) -> str | None:
    """The rendered ``location_id`` override, or ``None`` when it is unset (``""``, ``"None"``)."""
    location = location_id.strip() if isinstance(location_id, str) else None
    return None if location in ("", "None") else location


def make_hook(ghl_conn_id: str, location_id: str | None) -> ContactsHook:
    """A :class:`ContactsHook` for a (rendered) connection id and optional location override.

    (Credentials written into the connection's host are the hook's business: its settings drop
    them from the base URL and register them with Airflow's secrets masker.)
    """
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    return ContactsHook(ghl_conn_id=ghl_conn_id, location_id=clean_location_id(location_id))


def pick(record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The ``fields`` of ``record`` that are present and not ``None`` (key fields for XCom)."""
    return {f: record[f] for f in fields if record.get(f) is not None}


#: Entry points of a task that :class:`GHLTaskMixin` guards with :func:`~.failures.fail_fast`.
GUARDED_METHODS: tuple[str, ...] = ("execute", "execute_complete", "poke")


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` raising :func:`~.failures.fail_fast`'s error (chained) for permanent errors."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            replacement = fail_fast(exc, self)
            if replacement is None:
                raise
            raise replacement from exc

    guarded.__ghl_guarded__ = True  # type: ignore[attr-defined]
    return guarded


class GHLTaskMixin:
    """What every HighLevel operator *and* sensor shares (the one place for both):

    * **fail fast**: ``execute``, ``execute_complete`` and ``poke`` - of this class and of every
      subclass that defines them - run under :func:`~airflow_provider_contacts.operators.failures.fail_fast`:
      an error that no retry can cure (record not found, missing scope, another location's data,
      a request HighLevel rejects as invalid, bad configuration, a bad mapping) is re-raised as an
      ``AirflowFailException`` that is still the original error's class, with the fix in its
      message and the original chained (``__cause__``: its traceId, status, operation). Server,
      network, rate-limit and daily-limit errors stay retryable. In poke and reschedule mode a
      sensor's ``soft_fail`` / ``never_fail`` apply to them as to any ``AirflowFailException``.
    * **URL credentials** in rendered template fields (e.g. ``output_path="https://user:token@..."``)
      are registered with Airflow's secrets masker, so the UI's rendered fields and the logs show
      ``***`` (those of the connection's host are handled by the hook's settings).

    List it first among the bases (``class X(GHLTaskMixin, BaseOperator)``).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in GUARDED_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__ghl_guarded__", False):
                setattr(cls, name, _guarded(method))

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        for field in getattr(self, "template_fields", ()):
            mask_url_credentials(getattr(self, field, None))


class GHLBaseOperator(GHLTaskMixin, BaseOperator):
    """Base of every HighLevel Contacts operator: one operation, one hook call, a small result.

    :param ghl_conn_id: Airflow connection of type ``ghl`` (default ``ghl_default``). Templated.
    :param location_id: location (sub-account) to work in; defaults to the connection's
        ``location_id`` extra. Templated.

    Subclasses are mostly declarations: ``operation_id`` (the contacts.json ``operationId`` they
    wrap), ``hook_method``, ``template_fields``, ``id_params`` (id parameters checked before any
    request), ``body_model`` (the hook's request model the ``body`` parameter is validated
    against), ``result_fields``; they implement :meth:`call` (the one hook call) and may extend
    :meth:`validate` and :meth:`shape`.
    """

    #: The contacts.json ``operationId`` this operator wraps.
    operation_id: ClassVar[str]
    #: Name of the ContactsHook method this operator calls (it carries the same ``operation_id``).
    hook_method: ClassVar[str]
    #: Key fields of a returned record that go to XCom (``None``: the whole record).
    result_fields: ClassVar[Sequence[str] | None] = None
    #: Templated id parameters, checked by :meth:`validate` before any request.
    id_params: ClassVar[tuple[str, ...]] = ()
    #: Request model the ``body`` parameter is validated against (``None``: no body).
    body_model: ClassVar[type[RequestModel] | None] = None

    template_fields: Sequence[str] = ("ghl_conn_id", "location_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"body": "json", "filters": "json"}
    ui_color = "#dbe9ff"
    ui_fgcolor = "#1a1a1a"

    def __init__(
        self,
        *,
        ghl_conn_id: str = DEFAULT_CONN_ID,
        location_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ghl_conn_id = ghl_conn_id
        self.location_id = location_id

    # -- helpers for subclasses ------------------------------------------------------------
    @property
    def _owner(self) -> str:
        return f"{type(self).__name__}(task_id={self.task_id!r})"

    def _id(self, param: str) -> str:
        """The templated id parameter ``param``, checked (see :func:`check_id`)."""
        return check_id(self._owner, param, getattr(self, param), self.operation_id)

    def _ids(self, param: str) -> list[str]:
        """The templated list-of-ids parameter ``param``, checked."""
        return check_id_list(self._owner, param, getattr(self, param), self.operation_id)

    def _body(self, model: type[M], param: str = "body", value: Any = None) -> M:
        """The templated body parameter ``param`` validated against ``model``."""
        raw = getattr(self, param) if value is None else value
        return validate_request(self._owner, param, model, raw, self.operation_id)

    def validated_body(self) -> Any:
        """The rendered ``body`` validated against ``body_model`` (what the hook is given)."""
        if self.body_model is None:
            raise TypeError(f"{type(self).__name__} has no body_model")
        return self._body(self.body_model)

    def _list_body(self, model: type[M], param: str) -> M:
        """Validate the list parameter ``param`` as ``{param: [...]}`` against ``model``."""
        values = coerce_list(self._owner, param, getattr(self, param), self.operation_id)
        return validate_request(self._owner, param, model, {param: values}, self.operation_id)

    @cached_property
    def hook(self) -> ContactsHook:
        """The hook for ``ghl_conn_id`` and ``location_id`` (created once per task run)."""
        return make_hook(self.ghl_conn_id, self.location_id)

    # -- the template ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check rendered parameters before any request; raise :class:`GHLInputError`.

        Checks every ``id_params`` parameter and, with a ``body_model``, the ``body``.
        """
        for param in self.id_params:
            self._id(param)
        if self.body_model is not None:
            self.validated_body()

    def call(self, hook: ContactsHook) -> Any:
        """Make the one hook call of this operator and return its result."""
        raise NotImplementedError

    def shape(self, result: Any) -> Any:
        """Turn the hook result into the small JSON-able XCom value."""
        data = to_jsonable(result)
        if self.result_fields is not None and isinstance(data, Mapping):
            return pick(data, self.result_fields)
        return data

    def perform(self) -> Any:
        """Run :meth:`call` with the hook (delete-like operators catch a missing record here)."""
        return self.call(self.hook)

    def result_extras(self) -> dict[str, Any]:
        """Keys added to a dict XCom value after :meth:`shape` (delete-like: ``missing``)."""
        return {}

    def execute(self, context: Context) -> Any:
        """Validate inputs, call the hook once, and return the shaped result (pushed to XCom).

        Errors no retry can cure fail the task at once (:class:`GHLTaskMixin`).
        """
        self.validate()
        shaped = self.shape(self.perform())
        if isinstance(shaped, dict):
            shaped = {**shaped, **self.result_extras()}
        self.log.info("%s (%s) done: %s", self.operation_id, type(self).__name__, _summary(shaped))
        return shaped


class GHLContactOperator(GHLBaseOperator):
    """Base of operators that act on one contact (``/contacts/{contactId}/...``).

    :param contact_id: the contact's id. Templated.
    """

    template_fields: Sequence[str] = (*GHLBaseOperator.template_fields, "contact_id")
    id_params: ClassVar[tuple[str, ...]] = ("contact_id",)

    def __init__(self, *, contact_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id


class GHLBodyMixin(GHLBaseOperator):
    """Adds the templated ``body`` parameter (a dict, or a JSON object string after templating),
    validated against the class's ``body_model``. List it before the operator's other base class
    and add ``"body"`` to ``template_fields``.
    """

    def __init__(self, *, body: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body = body


class GHLDeleteMixin(GHLBaseOperator):
    """Adds ``missing_ok`` to a delete-like operator (delete a contact, task or note; remove a
    contact from a campaign or workflow, remove tags or followers). List it before the operator's
    other base class.

    :param missing_ok: treat a record that does not exist as done (default True), which makes the
        operator idempotent: a retry or re-run after a success does not fail. "Does not exist" is a
        404, or - what the live API answers for an unknown or deleted contact, task or note - a 400
        whose message says ``... not found`` (ghl-live-notes.md). With False the task fails at once
        on a missing record (no retries: it cannot appear by itself).

    XCom: the operator's own value plus ``"missing": bool`` (True: it was already gone).
    """

    #: What :meth:`call` is taken to have returned when the record was missing (``False``: not deleted).
    missing_result: ClassVar[Any] = False

    def __init__(self, *, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.missing_ok = missing_ok
        self._missing = False

    def perform(self) -> Any:
        """The delete; :attr:`missing_result` when the record was already gone and ``missing_ok``."""
        self._missing = False
        try:
            return super().perform()
        except Exception as exc:
            if not (self.missing_ok and is_not_found(exc)):
                raise
            self._missing = True
            self.log.info(
                "%s: %s (HTTP %s) - already gone; missing_ok=True, so this counts as done",
                self.operation_id, getattr(exc, "message", exc), getattr(exc, "status", None),
            )
            return copy.deepcopy(self.missing_result)

    def result_extras(self) -> dict[str, Any]:
        return {**super().result_extras(), "missing": self._missing}


def _summary(value: Any) -> str:
    """A short description of an XCom value for the task log: ids, flags and counts only.

    Personal data (names, emails, phones, note bodies) stays out of the logs.
    """
    if isinstance(value, Mapping):
        keys = ", ".join(
            f"{k}={v!r}"
            for k, v in value.items()
            if isinstance(v, (bool, int, float)) or (isinstance(v, str) and (k == "id" or k.endswith(("_id", "Id"))))
        )
        counts = ", ".join(f"{k}: {len(v)} item(s)" for k, v in value.items() if isinstance(v, (list, dict)))
        return "; ".join(p for p in (keys, counts) if p) or "{}"
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    return type(value).__name__


__all__ = [
    "GUARDED_METHODS",
    "GHLBaseOperator",
    "GHLBodyMixin",
    "GHLContactOperator",
    "GHLDeleteMixin",
    "GHLInputError",
    "GHLTaskMixin",
    "check_id",
    "check_id_list",
    "clean_location_id",
    "coerce_list",
    "coerce_mapping",
    "input_error",
    "make_hook",
    "pick",
    "succeeded",
    "to_jsonable",
    "validate_filters",
    "validate_request",
]
