"""The base classes of the HighLevel Contacts operators.

Every operator wraps exactly one Contacts API operation (one ``operationId`` of contacts.json) and
one :class:`~airflow_provider_contacts.hooks.contacts.GHLContactsHook` method. The base classes own
what they all share:

* ``ghl_conn_id`` (default ``ghl_default``) and an optional ``location_id`` override, both
  templated, and the cached ``hook``;
* input checks that run *before* any request (:mod:`airflow_provider_contacts.params`): ids must
  be non-empty strings without ``/``, bodies (dicts, or JSON strings after templating) are
  validated with the hook's pydantic request models so that the error names the field and the fix
  (:class:`~airflow_provider_contacts.params.GHLInputError`, which fails the task without
  retries - retrying cannot fix a bad input);
* result shaping (:mod:`airflow_provider_contacts.results`): a small JSON-serialisable dict for
  XCom (ids, counts, key fields), never a whole location; many records go to a table or a file
  (:class:`GHLRecordsOperator`, :mod:`.output`);
* what they share with the sensors (:class:`~airflow_provider_contacts.task_mixin.GHLTaskMixin`):
  errors no retry can cure fail the task at once (:mod:`airflow_provider_contacts.failures`),
  transient ones stay retryable; credentials inside URLs are masked in logs and rendered fields.

A concrete operator declares ``operation_id``, its templated parameters, and implements
:meth:`GHLBaseOperator.call` (the one hook call) and, if needed, :meth:`GHLBaseOperator.shape`;
a records operator implements :meth:`GHLRecordsOperator.iter_records` instead.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.sdk import BaseOperator
from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.failures import is_not_found
from airflow_provider_contacts.operators.output import DEFAULT_BATCH_SIZE, DEFAULT_MAX_XCOM_RECORDS, OutputOptions, deliver_records
from airflow_provider_contacts.params import (
    check_id,
    check_id_list,
    coerce_list,
    input_error,
    validate_request,
)
from airflow_provider_contacts.results import api_record, log_summary, pick, to_jsonable
from airflow_provider_contacts.task_mixin import GHLTaskMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_contacts.hooks.contacts import GHLContactsHook
    from airflow_provider_contacts.models import RequestModel

M = TypeVar("M", bound="RequestModel")


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
    #: Name of the GHLContactsHook method this operator calls (it carries the same ``operation_id``).
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

    # -- the template ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check rendered parameters before any request; raise :class:`GHLInputError`.

        Checks every ``id_params`` parameter and, with a ``body_model``, the ``body``.
        """
        for param in self.id_params:
            self._id(param)
        if self.body_model is not None:
            self.validated_body()

    def call(self, hook: GHLContactsHook) -> Any:
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
        self.log.info("%s (%s) done: %s", self.operation_id, type(self).__name__, log_summary(shaped))
        return shaped

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage facets (read by the OpenLineage provider when it is installed): the
        location's contacts, tasks, notes or appointments as the input of a read, the output of
        a write (:func:`airflow_provider_contacts.lineage.operator_lineage`); ``None`` without
        the provider."""
        from airflow_provider_contacts.lineage import operator_lineage

        return operator_lineage(self)


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


class GHLRecordsOperator(GHLBaseOperator):
    """Base of operators that can return many records (search, list, contacts of a business).

    :param output_table: write the records to this table ('table' or 'schema.table') instead of
        XCom; created when missing. Templated.
    :param output_conn_id: common-sql connection of ``output_table`` (or the storage connection of
        ``output_path``). Templated.
    :param output_path: write the records as JSON Lines to this ObjectStoragePath URL (e.g.
        ``file:///data/contacts.jsonl``, ``s3://bucket/contacts.jsonl``) instead of XCom. Templated.
    :param max_xcom_records: without a target, fail rather than push more records than this to
        XCom (default 1,000).
    :param batch_size: records per batch written to the target (one transaction / one flush).
    :param create_table: create ``output_table`` when it does not exist (default True).
    :param max_records: stop after this many records (``None``: every record).

    XCom result: ``{"count": n, "records": [...]}`` without a target, ``{"count": n,
    "output_table": ..., "output_conn_id": ...}`` or ``{"count": n, "output_path": ...}`` with one.
    Reading only: idempotent.
    """

    #: API fields stored as their own columns in ``output_table`` (besides ``id`` and ``record``).
    key_fields: ClassVar[Sequence[str]] = ("id",)

    template_fields: Sequence[str] = (
        *GHLBaseOperator.template_fields,
        "output_table",
        "output_conn_id",
        "output_path",
    )

    def __init__(
        self,
        *,
        output_table: str | None = None,
        output_conn_id: str | None = None,
        output_path: str | None = None,
        max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        create_table: bool = True,
        max_records: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_records = max_records
        self.output_table = output_table
        self.output_conn_id = output_conn_id
        self.output_path = output_path
        self.max_xcom_records = max_xcom_records
        self.batch_size = batch_size
        self.create_table = create_table

    @property
    def output_options(self) -> OutputOptions:
        """The rendered output parameters."""
        return OutputOptions(
            output_table=(self.output_table or "").strip() or None,
            output_conn_id=(self.output_conn_id or "").strip() or None,
            output_path=(self.output_path or "").strip() or None,
            max_xcom_records=self.max_xcom_records,
            batch_size=self.batch_size,
            create_table=self.create_table,
        )

    def iter_records(self, hook: GHLContactsHook) -> Iterable[Any]:
        """The records (hook models), lazily: the one hook call (an iterator or a list)."""
        raise NotImplementedError

    def validate(self) -> None:
        super().validate()
        if self.max_records is not None and (
            isinstance(self.max_records, bool) or not isinstance(self.max_records, int) or self.max_records < 1
        ):
            raise input_error(self._owner, "max_records", "must be a positive integer or None", self.operation_id)

    def call(self, hook: GHLContactsHook) -> Iterator[dict[str, Any]]:
        records = iter(self.iter_records(hook))
        if self.max_records is not None:
            records = islice(records, self.max_records)
        return (api_record(record) for record in records)

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, stream the records to the target (or collect them for XCom), return the summary."""
        self.validate()
        result = deliver_records(  # checks the output options before any request
            lambda: self.call(self.hook),
            self.output_options,
            owner=self._owner,
            key_fields=self.key_fields,
            operation=self.operation_id,
            log=self.log,
        )
        self.log.info("%s (%s): %d record(s)", self.operation_id, type(self).__name__, result["count"])
        return result


class GHLContactRecordsOperator(GHLRecordsOperator, GHLContactOperator):
    """Base of operators that list records of one contact (tasks, notes, appointments).

    :param contact_id: the contact's id. Templated.
    """

    template_fields: Sequence[str] = (*GHLRecordsOperator.template_fields, "contact_id")


__all__ = [
    "GHLBaseOperator",
    "GHLBodyMixin",
    "GHLContactOperator",
    "GHLContactRecordsOperator",
    "GHLDeleteMixin",
    "GHLRecordsOperator",
]
