"""DynamoDB repositories (pynamodb) for the state table and the people table.

State table access patterns (pk, sk), each a GetItem, conditional write or Query on one key:
  CHAIN / LEASE               the cycle chain's lease (conditional writes only)
  CONFIG / PAUSE              the pause flag
  OBJECT#<sobject> / WATERMARK   last window fully stored
  OBJECT#<sobject> / CURSOR      the open window and the last record stored
  OBJECT#<sobject> / DESCRIBE    the fields the sync user can see, and when that was asked
  CYCLE#<id> / RUN            one cycle's record; CYCLE#<id> / OBJECT#<sobject> its per-object counters
  CYCLES / <started_at>#<id>  index of cycles, newest first (Query, paged by Limit)
  SYNC_ERRORS / <sobject>#<person id>  a record Salesforce refused, until it goes through (TTL)
  CHANGES#<person id> / <at>#<version>  a person's change log: field, old, new, source, rule (TTL)
  EMAIL#<sha-256 of the lower-cased email> / CLAIM  the person create_person made with that email
People table: a person by id (GetItem/BatchGetItem), by Salesforce id (GSI by-sf-id), by email
(GSI by-email, sparse: only people with an email are in it), a company's people (GSI by-company,
sparse: contacts with an account), people with marketing changes not yet in Salesforce (GSI
pending-push, sparse: by object, oldest change first), the aliases that lead to a person (GSI
by-alias, sparse: merged-away and converted identities), the people written since a time (GSI
by-change: every person, not an alias, by ``YYYY-MM#shard`` of its last write and its ``synced_at``;
``domain.change_feed``). Every index keeps keys only; a Query pages, then a BatchGet. Every write
of a stored person bumps its version and is conditional on the version it was read at, so a pull
or a push never overwrites an edit made meanwhile.
The records table (every other object) is in ``adapters.records``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, wraps
from typing import Any, ParamSpec, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import MAP, STRING
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ..domain.change_feed import change_bucket, read_changed
from ..domain.cursor import Position, Window, to_stamp
from ..domain.people import FieldChange, PersonChange, logged_value
from ..domain.records import FieldInfo
from ..domain.synced_fields import SchemaDrift
from ..errors import FatalError, RetriableError
from ..ports import (
    AliasWrite,
    Cursor,
    CycleRun,
    Lease,
    ObjectStats,
    Page,
    PersonRef,
    SyncErrorRecord,
    Watermark,
)

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
RETRIABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}
COUNTERS = ObjectStats.COUNTERS


def _classified(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn DynamoDB failures into the sync's errors: throttling is retriable, a missing table is fatal."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except PynamoDBException as exc:
            code = exc.cause_response_code or ""
            if code in RETRIABLE_CODES or code == "":
                raise RetriableError(
                    f"DynamoDB {fn.__name__} failed ({code or type(exc.cause).__name__}): "
                    f"{exc.cause_response_message or exc}"
                ) from exc
            if code == "ResourceNotFoundException":
                raise FatalError(
                    f"DynamoDB table missing or not accessible: {exc.cause_response_message}"
                ) from exc
            raise FatalError(f"DynamoDB {fn.__name__} failed ({code}): {exc.cause_response_message}") from exc
        except (BotoCoreError, ClientError) as exc:
            raise RetriableError(f"DynamoDB {fn.__name__} failed: {exc}") from exc

    return wrapper


def _connection(model: type[Model]) -> Connection:
    """The connection a transaction goes through, one per endpoint: a new one builds a botocore
    client each time (0.1 to 0.3 s of CPU, measured on the local stack)."""
    return _cached_connection(getattr(model.Meta, "region", None), getattr(model.Meta, "host", None))


@cache
def _cached_connection(region: str | None, host: str | None) -> Connection:
    return Connection(region=region, host=host)


WRITERS = 4  # a slice's DynamoDB writes in flight at once


@cache
def _writers() -> ThreadPoolExecutor:
    """Kept for the warm container: each thread builds its botocore client once (pynamodb keeps a
    session per thread)."""
    return ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="dynamodb-writer")


def in_parallel(write: Callable[[T], R], parts: Iterable[T]) -> list[R]:
    """``write`` each part, up to WRITERS at once (a slice's batches overlap their round trips);
    the answers in the parts' order. An error raises once every part has ended."""
    parts = list(parts)
    if len(parts) <= 1:
        return [write(part) for part in parts]
    futures = [_writers().submit(write, part) for part in parts]
    wait(futures)
    return [future.result() for future in futures]


# -- state table ---------------------------------------------------------------------------------
class _StateModel(Model):
    class Meta:
        table_name = "unbound-state-table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute(null=True)  # TTL (epoch seconds)


class LeaseItem(_StateModel):
    holder = UnicodeAttribute(null=True)
    until = UnicodeAttribute(null=True)


class FlagItem(_StateModel):
    enabled = BooleanAttribute(default=False)


class WatermarkItem(_StateModel):
    stamp = UnicodeAttribute()
    tail_start = UnicodeAttribute(null=True)
    tail_count = NumberAttribute(null=True)
    tail_digest = UnicodeAttribute(null=True)


class CursorItem(_StateModel):
    cycle_id = UnicodeAttribute()
    lower = UnicodeAttribute(null=True)
    upper = UnicodeAttribute()
    position_stamp = UnicodeAttribute(null=True)
    position_id = UnicodeAttribute(null=True)
    slices = NumberAttribute(default=0)
    tail_count = NumberAttribute(default=0)
    tail_total = NumberAttribute(default=0)
    bulk_job = UnicodeAttribute(null=True)
    bulk_locator = UnicodeAttribute(null=True)
    reconcile = BooleanAttribute(null=True)
    reconcile_after = UnicodeAttribute(null=True)


class DescribeItem(_StateModel):
    taken_at = UnicodeAttribute()
    fields = JSONAttribute()  # [[name, type, custom, [reference_to...]], ...]


class SizeItem(_StateModel):
    records = NumberAttribute()  # counted when the object's first copy was planned


class DriftItem(_StateModel):
    dropped = JSONAttribute()  # {field: since}
    backfill = JSONAttribute()  # [field, ...]


class CycleItem(_StateModel):
    run = JSONAttribute()


class SyncErrorItem(_StateModel):
    person_id = UnicodeAttribute()
    sf_id = UnicodeAttribute(null=True)
    code = UnicodeAttribute()
    message = UnicodeAttribute()
    fields = JSONAttribute(null=True)
    at = UnicodeAttribute()
    operation = UnicodeAttribute(default="update")


class ChangeLogItem(_StateModel):
    source = UnicodeAttribute()
    changes = JSONAttribute()  # [{"field", "old", "new", "rule"?}, ...]


class EmailClaimItem(_StateModel):
    person_id = UnicodeAttribute()


class CycleObjectItem(_StateModel):
    created = NumberAttribute(default=0)
    updated = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    deleted = NumberAttribute(default=0)
    hidden = NumberAttribute(default=0)
    merged = NumberAttribute(default=0)
    converted = NumberAttribute(default=0)
    filtered = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    pushed = NumberAttribute(default=0)
    push_failed = NumberAttribute(default=0)
    api_calls = NumberAttribute(default=0)
    slices = NumberAttribute(default=0)
    duration_ms = NumberAttribute(default=0)


STATE_MODELS: tuple[type[_StateModel], ...] = (
    _StateModel,
    LeaseItem,
    FlagItem,
    WatermarkItem,
    CursorItem,
    DescribeItem,
    CycleItem,
    CycleObjectItem,
    ChangeLogItem,
    SyncErrorItem,
    EmailClaimItem,
)
LEASE_KEY = ("CHAIN", "LEASE")
PAUSE_KEY = ("CONFIG", "PAUSE")
SYNC_ERRORS_PK = "SYNC_ERRORS"


def _object_pk(sobject: str) -> str:
    return f"OBJECT#{sobject}"


class StateRepository:
    """The StatePort on DynamoDB: conditional writes for the lease, a transaction to complete a window."""

    def __init__(self, table_name: str, history_days: int = 30) -> None:
        for model in STATE_MODELS:
            model.Meta.table_name = table_name
        self.table_name = table_name
        self.history = timedelta(days=history_days)

    def _expiry(self) -> int:
        return int((datetime.now(UTC) + self.history).timestamp())

    # lease ------------------------------------------------------------------------------------
    @_classified
    def lease(self) -> Lease | None:
        try:
            item = LeaseItem.get(*LEASE_KEY, consistent_read=True)
        except LeaseItem.DoesNotExist:
            return None
        return Lease(item.holder, item.until or "") if item.holder else None

    @_classified
    def take_lease(self, holder: str, now: str, until: str) -> bool:
        item = LeaseItem(*LEASE_KEY, holder=holder, until=until)
        free = LeaseItem.pk.does_not_exist() | LeaseItem.holder.does_not_exist() | (LeaseItem.until < now)
        return self._conditional(lambda: item.save(condition=free))

    @_classified
    def hand_over_lease(self, from_holder: str, to_holder: str, until: str) -> bool:
        item = LeaseItem(*LEASE_KEY)
        return self._conditional(
            lambda: item.update(
                actions=[LeaseItem.holder.set(to_holder), LeaseItem.until.set(until)],
                condition=LeaseItem.holder == from_holder,
            )
        )

    @_classified
    def renew_lease(self, holder: str, until: str) -> bool:
        item = LeaseItem(*LEASE_KEY)
        return self._conditional(
            lambda: item.update(actions=[LeaseItem.until.set(until)], condition=LeaseItem.holder == holder)
        )

    @_classified
    def release_lease(self, holder: str) -> None:
        item = LeaseItem(*LEASE_KEY)
        self._conditional(
            lambda: item.update(
                actions=[LeaseItem.holder.remove(), LeaseItem.until.remove()],
                condition=LeaseItem.holder == holder,
            )
        )

    @staticmethod
    def _conditional(write: Callable[[], Any]) -> bool:
        try:
            write()
        except PynamoDBException as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # pause ------------------------------------------------------------------------------------
    @_classified
    def is_paused(self) -> bool:
        try:
            return bool(FlagItem.get(*PAUSE_KEY, consistent_read=True).enabled)
        except FlagItem.DoesNotExist:
            return False

    @_classified
    def set_paused(self, paused: bool) -> None:
        FlagItem(*PAUSE_KEY, enabled=paused).save()

    @_classified
    def switch_pause(self, paused: bool) -> bool:
        # an absent flag reads as "not paused"
        if paused:
            was_other = FlagItem.pk.does_not_exist() | (FlagItem.enabled == False)  # noqa: E712
        else:
            was_other = FlagItem.enabled == True  # noqa: E712
        item = FlagItem(*PAUSE_KEY, enabled=paused)
        return self._conditional(lambda: item.save(condition=was_other))

    # watermarks and cursors -------------------------------------------------------------------
    @_classified
    def watermark(self, sobject: str) -> str | None:
        try:
            return str(WatermarkItem.get(_object_pk(sobject), "WATERMARK", consistent_read=True).stamp)
        except WatermarkItem.DoesNotExist:
            return None

    @_classified
    def plan_marks(self, sobjects: Sequence[str]) -> dict[str, tuple[Watermark | None, bool]]:
        """Each object's watermark and whether a window is open: one BatchGet of both keys of every
        object (a cursor comes back through the watermark's model, and only its key is used)."""
        keys = [(_object_pk(o), sk) for o in sobjects for sk in ("WATERMARK", "CURSOR")]
        marks: dict[str, Watermark] = {}
        open_windows: set[str] = set()
        for item in WatermarkItem.batch_get(keys, consistent_read=True):
            if item.sk == "CURSOR":
                open_windows.add(item.pk)
                continue
            marks[item.pk] = Watermark(
                str(item.stamp),
                item.tail_start,
                int(item.tail_count) if item.tail_count is not None else None,
                item.tail_digest,
            )
        return {o: (marks.get(_object_pk(o)), _object_pk(o) in open_windows) for o in sobjects}

    @_classified
    def cursor(self, sobject: str) -> Cursor | None:
        try:
            item = CursorItem.get(_object_pk(sobject), "CURSOR", consistent_read=True)
        except CursorItem.DoesNotExist:
            return None
        position = (
            Position(item.position_stamp, item.position_id)
            if item.position_stamp and item.position_id
            else None
        )
        return Cursor(
            sobject=sobject,
            cycle_id=item.cycle_id,
            window=Window(item.lower, item.upper),
            position=position,
            slices=int(item.slices or 0),
            tail_count=int(item.tail_count or 0),
            tail_total=int(item.tail_total or 0),
            bulk_job=item.bulk_job,
            bulk_locator=item.bulk_locator,
            reconcile=bool(item.reconcile),
            reconcile_after=item.reconcile_after,
        )

    @_classified
    def save_cursor(self, cursor: Cursor) -> None:
        CursorItem(
            _object_pk(cursor.sobject),
            "CURSOR",
            cycle_id=cursor.cycle_id,
            lower=cursor.window.lower,
            upper=cursor.window.upper,
            position_stamp=cursor.position.stamp if cursor.position else None,
            position_id=cursor.position.record_id if cursor.position else None,
            slices=cursor.slices,
            tail_count=cursor.tail_count,
            tail_total=cursor.tail_total,
            bulk_job=cursor.bulk_job,
            bulk_locator=cursor.bulk_locator,
            reconcile=cursor.reconcile or None,
            reconcile_after=cursor.reconcile_after,
        ).save()

    @_classified
    def described(self, sobject: str) -> tuple[str, list[FieldInfo]] | None:
        try:
            item = DescribeItem.get(_object_pk(sobject), "DESCRIBE")
        except DescribeItem.DoesNotExist:
            return None
        fields = [FieldInfo(n, kind, bool(custom), tuple(refs)) for n, kind, custom, refs in item.fields]
        return str(item.taken_at), fields

    @_classified
    def save_described(self, sobject: str, taken_at: str, fields: list[FieldInfo]) -> None:
        DescribeItem(
            _object_pk(sobject),
            "DESCRIBE",
            taken_at=taken_at,
            fields=[[f.name, f.type, f.custom, list(f.reference_to)] for f in fields],
        ).save()

    @_classified
    def first_copy_size(self, sobject: str) -> int | None:
        try:
            return int(SizeItem.get(_object_pk(sobject), "FIRST_COPY_SIZE").records)
        except SizeItem.DoesNotExist:
            return None

    @_classified
    def save_first_copy_size(self, sobject: str, records: int) -> None:
        SizeItem(_object_pk(sobject), "FIRST_COPY_SIZE", records=records).save()

    @_classified
    def schema_drift(self, sobject: str) -> SchemaDrift:
        try:
            item = DriftItem.get(_object_pk(sobject), "DRIFT", consistent_read=True)
        except DriftItem.DoesNotExist:
            return SchemaDrift()
        return SchemaDrift(dict(item.dropped or {}), tuple(item.backfill or ()))

    @_classified
    def save_schema_drift(self, sobject: str, drift: SchemaDrift) -> None:
        DriftItem(_object_pk(sobject), "DRIFT", dropped=drift.dropped, backfill=list(drift.backfill)).save()

    @_classified
    def complete_window(self, sobject: str, watermark: Watermark) -> None:
        try:
            with TransactWrite(connection=_connection(WatermarkItem)) as tx:
                tx.save(
                    WatermarkItem(
                        _object_pk(sobject),
                        "WATERMARK",
                        stamp=watermark.stamp,
                        tail_start=watermark.tail_start,
                        tail_count=watermark.tail_count,
                        tail_digest=watermark.tail_digest,
                    )
                )
                tx.delete(CursorItem(_object_pk(sobject), "CURSOR"))
        except TransactWriteError as exc:
            raise RetriableError(
                f"could not complete the {sobject} window: {exc.cause_response_message}"
            ) from exc

    @_classified
    def restart_object(self, sobject: str) -> bool:
        pk = _object_pk(sobject)
        had = False
        for model, sk in ((WatermarkItem, "WATERMARK"), (CursorItem, "CURSOR")):
            try:
                model.get(pk, sk, consistent_read=True, attributes_to_get=["pk"])
                had = True
            except model.DoesNotExist:
                pass
        if not had:
            return False
        try:
            with TransactWrite(connection=_connection(WatermarkItem)) as tx:
                tx.delete(WatermarkItem(pk, "WATERMARK"))
                tx.delete(CursorItem(pk, "CURSOR"))
        except TransactWriteError as exc:
            raise RetriableError(f"could not restart {sobject}: {exc.cause_response_message}") from exc
        return True

    # cycles -----------------------------------------------------------------------------------
    @_classified
    def start_cycle(self, run: CycleRun) -> None:
        expires = self._expiry()
        CycleItem(f"CYCLE#{run.cycle_id}", "RUN", run=_run_json(run), expires_at=expires).save()
        CycleItem(
            "CYCLES", f"{run.started_at}#{run.cycle_id}", run={"cycle_id": run.cycle_id}, expires_at=expires
        ).save()

    @_classified
    def add_object_stats(self, cycle_id: str, stats: ObjectStats) -> None:
        item = CycleObjectItem(f"CYCLE#{cycle_id}", f"OBJECT#{stats.sobject}")
        item.update(
            actions=[
                *(getattr(CycleObjectItem, name).add(getattr(stats, name)) for name in COUNTERS),
                CycleObjectItem.expires_at.set(self._expiry()),
            ]
        )

    @_classified
    def object_stats(self, cycle_id: str) -> list[ObjectStats]:
        out = []
        for item in CycleObjectItem.query(
            f"CYCLE#{cycle_id}", CycleObjectItem.sk.startswith("OBJECT#"), consistent_read=True
        ):
            out.append(
                ObjectStats(
                    sobject=item.sk.split("#", 1)[1],
                    **{name: int(getattr(item, name) or 0) for name in COUNTERS},
                )
            )
        return out

    @_classified
    def finish_cycle(self, run: CycleRun) -> None:
        CycleItem(f"CYCLE#{run.cycle_id}", "RUN", run=_run_json(run), expires_at=self._expiry()).save()

    @_classified
    def cycle(self, cycle_id: str) -> CycleRun | None:
        try:
            item = CycleItem.get(f"CYCLE#{cycle_id}", "RUN", consistent_read=True)
        except CycleItem.DoesNotExist:
            return None
        return CycleRun(**item.run)

    @_classified
    def recent_cycles(self, limit: int) -> list[CycleRun]:
        runs = []
        for item in CycleItem.query("CYCLES", scan_index_forward=False, limit=limit):
            run = self.cycle(item.run["cycle_id"])
            if run is not None:
                runs.append(run)
        return runs

    # sync errors -----------------------------------------------------------------------------
    @_classified
    def save_sync_errors(self, errors: Sequence[SyncErrorRecord]) -> None:
        """Keep each refusal as long as the cycle records that counted it (``history_days``, from
        this refusal): it holds no values (the Salesforce adapter redacts them), but an operator who
        has not retried it by then will not, and a record refused again is kept again."""
        expires = self._expiry()
        with SyncErrorItem.batch_write() as batch:
            for e in errors:
                batch.save(
                    SyncErrorItem(
                        SYNC_ERRORS_PK,
                        f"{e.sobject}#{e.person_id}",
                        person_id=e.person_id,
                        sf_id=e.sf_id,
                        code=e.code or "UNKNOWN",
                        message=e.message or "",
                        fields=list(e.fields),
                        at=e.at,
                        operation=e.operation,
                        expires_at=expires,
                    )
                )

    @_classified
    def clear_sync_errors(self, keys: Sequence[tuple[str, str]]) -> None:
        """Delete by key without reading first: deleting an absent item is a no-op for DynamoDB."""
        with SyncErrorItem.batch_write() as batch:
            for sobject, person_id in dict.fromkeys(keys):
                batch.delete(SyncErrorItem(SYNC_ERRORS_PK, f"{sobject}#{person_id}"))

    @_classified
    def sync_errors(self, sobject: str | None = None, limit: int = 100) -> list[SyncErrorRecord]:
        condition = SyncErrorItem.sk.startswith(f"{sobject}#") if sobject else None
        return [
            SyncErrorRecord(
                sobject=item.sk.split("#", 1)[0],
                person_id=item.person_id,
                sf_id=item.sf_id,
                code=item.code,
                message=item.message,
                fields=tuple(item.fields or ()),
                at=item.at,
                operation=item.operation,
            )
            for item in SyncErrorItem.query(SYNC_ERRORS_PK, condition, limit=limit, consistent_read=True)
        ]

    @_classified
    def sync_error_counts(self) -> dict[str, int]:
        """The open sync errors by object (their keys only: one read request per 1 MB of keys)."""
        counts: dict[str, int] = {}
        for item in SyncErrorItem.query(SYNC_ERRORS_PK, attributes_to_get=["sk"], consistent_read=True):
            sobject = item.sk.split("#", 1)[0]
            counts[sobject] = counts.get(sobject, 0) + 1
        return counts


def _run_json(run: CycleRun) -> dict[str, Any]:
    return dataclasses.asdict(run)


# -- people table ----------------------------------------------------------------------------------
class FieldsAttribute(Attribute[dict[str, Any]]):
    """A person's or record's fields, by name, stored as one compact JSON string.

    A first copy writes every field of every record: as a map, each field is a typed attribute that
    boto3 serializes and DynamoDB parses one by one; as one string, once. On the bench's 100,000-record
    first copy (DynamoDB Local), the CPU of the process running the sync fell from 41-42 s to 30-33 s
    and DynamoDB Local's from 61-66 s to 51-59 s. No code of ours reads a field inside an expression.
    An item stored as a map (before this attribute) reads the same."""

    attr_type = STRING

    def serialize(self, value: dict[str, Any]) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def deserialize(self, value: str) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(value)
        return fields

    def get_value(self, value: dict[str, Any]) -> Any:
        if MAP in value:  # stored as a map: read as the map it is, handed on as the string it becomes
            return self.serialize(MapAttribute[str, Any]().deserialize(value[MAP]))
        return super().get_value(value)


class BySalesforceId(GlobalSecondaryIndex["PersonItem"]):
    class Meta:
        index_name = "by-sf-id"
        projection = KeysOnlyProjection()

    sf_id = UnicodeAttribute(hash_key=True)


class ByEmail(GlobalSecondaryIndex["PersonItem"]):
    class Meta:
        index_name = "by-email"
        projection = KeysOnlyProjection()

    email = UnicodeAttribute(hash_key=True)


class ByCompany(GlobalSecondaryIndex["PersonItem"]):
    class Meta:
        index_name = "by-company"
        projection = KeysOnlyProjection()

    company_id = UnicodeAttribute(hash_key=True)


class PendingPush(GlobalSecondaryIndex["PersonItem"]):
    class Meta:
        index_name = "pending-push"
        projection = KeysOnlyProjection()

    push_type = UnicodeAttribute(hash_key=True)
    pending_since = UnicodeAttribute(range_key=True)


class ByAlias(GlobalSecondaryIndex["PersonItem"]):
    class Meta:
        index_name = "by-alias"
        projection = KeysOnlyProjection()

    alias_of = UnicodeAttribute(hash_key=True)


class ByChange(GlobalSecondaryIndex["PersonItem"]):
    class Meta:
        index_name = "by-change"
        projection = KeysOnlyProjection()

    change_bucket = UnicodeAttribute(hash_key=True)
    synced_at = UnicodeAttribute(range_key=True)


class PersonItem(Model):
    class Meta:
        table_name = "unbound-people-table"

    person_id = UnicodeAttribute(hash_key=True)
    sf_id = UnicodeAttribute(null=True)
    sf_type = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)  # lower-cased; absent when the person has none (sparse index)
    company_id = UnicodeAttribute(null=True)  # the contact's Account id (sparse index)
    fields = FieldsAttribute(default=dict)
    digest = UnicodeAttribute()
    sf_modstamp = UnicodeAttribute(null=True)
    synced_at = UnicodeAttribute()
    alias_of = UnicodeAttribute(null=True)  # set on a merged-away or converted identity: follow it
    version = NumberAttribute(default=0)
    pending = MapAttribute[str, Any](null=True)  # field -> the value Salesforce holds (the base)
    push_type = UnicodeAttribute(null=True)  # Lead or Contact while pending (sparse index)
    pending_since = UnicodeAttribute(null=True)
    push_error = UnicodeAttribute(null=True)  # the code Salesforce refused the last push with
    # YYYY-MM#shard of synced_at (domain.change_feed); absent on an alias, and on a person last written
    # before the index existed (until it is written again)
    change_bucket = UnicodeAttribute(null=True)
    by_sf_id = BySalesforceId()
    by_email = ByEmail()
    by_company = ByCompany()
    pending_push = PendingPush()
    by_alias = ByAlias()
    by_change = ByChange()


@dataclass(frozen=True)
class StoredPerson:
    """A person as stored, with plain values (no pynamodb types leave this module)."""

    person_id: str
    sf_id: str | None
    sf_type: str | None
    email: str | None
    fields: dict[str, Any]
    digest: str
    sf_modstamp: str | None
    synced_at: str
    alias_of: str | None = None
    version: int = 0
    pending: dict[str, Any] = dataclasses.field(default_factory=dict)


def _map(attribute: MapAttribute[str, Any] | None) -> dict[str, Any]:
    return attribute.as_dict() if attribute is not None else {}


def _person(item: PersonItem) -> StoredPerson:
    return StoredPerson(
        person_id=item.person_id,
        sf_id=item.sf_id,
        sf_type=item.sf_type,
        email=item.email,
        fields=item.fields or {},
        digest=item.digest,
        sf_modstamp=item.sf_modstamp,
        synced_at=item.synced_at,
        alias_of=item.alias_of,
        version=int(item.version or 0),
        pending=_map(item.pending),
    )


# An item turned alias leaves every index and keeps no personal data.
ALIAS_CLEARS = (
    "sf_id",
    "sf_type",
    "email",
    "company_id",
    "fields",
    "sf_modstamp",
    "pending",
    "push_type",
    "pending_since",
    "push_error",
    "change_bucket",
)


def _hidden_or_deleted(fields: dict[str, Any]) -> bool:
    return bool(fields.get("sfdc_is_deleted") or fields.get("sfdc_not_visible"))


def _item_units(units: Sequence[Sequence[PersonChange | AliasWrite]]) -> list[int]:
    """The unit of each item of a transaction, in the order DynamoDB reports cancellation reasons:
    pynamodb sends every put (people, change-log entries) before every update (aliases)."""
    puts: list[int] = []
    updates: list[int] = []
    for number, unit in enumerate(units):
        for write in unit:
            if isinstance(write, AliasWrite):
                updates.append(number)
            else:
                puts += [number] * _size(write)
    return puts + updates


def _size(write: PersonChange | AliasWrite) -> int:
    """Items a write puts in a transaction: the person (or alias), and its change-log entry."""
    return 2 if isinstance(write, PersonChange) and write.log else 1


# TransactWriteItems takes items of 4 MB at most in all (DynamoDB Local says "Transaction payload size
# cannot exceed 4MB"): a budget under it, for items counted as _bytes counts them.
TRANSACTION_BYTES = 3_500_000
ITEM_OVERHEAD = 1_024  # an item's bytes besides a person's values, bases and changes: keys, stamps...
LOG_ENTRY_BYTES = 128  # a change-log entry's keys ("field", "old", ...) and punctuation, at most
# a write bounded at less is counted at its bound: 50 of them (a transaction's 100 items, with their
# change-log entries) stay under the budget, so only a larger one is worth measuring
MEASURED_ABOVE = TRANSACTION_BYTES // 50


def _bytes(write: PersonChange | AliasWrite) -> int:
    """At least the bytes ``write`` puts in a transaction. A value's JSON takes at most 12 bytes a
    character of its repr (an astral character escaped as two \\u escapes), so the reprs bound a
    write cheaply; one that may be large is measured: its values, bases and changes as ASCII JSON,
    more than any form they are stored in (a field's UTF-8, an escape's 6 bytes, a map's overhead)."""
    if isinstance(write, AliasWrite):
        return ITEM_OVERHEAD
    overhead = ITEM_OVERHEAD * _size(write) + LOG_ENTRY_BYTES * len(write.log)
    # the values' reprs one by one (a FieldChange's repr, or a list's, is several times slower: a
    # first copy logs every field of every person)
    logged = sum(
        len(c.field)
        + len(c.source)
        + len(str(c.rule))
        + len(repr(c.old))
        + len(repr(c.new))
        + (len(repr(c.conflict)) if c.conflict is not None else 0)
        for c in write.log
    )
    bound = 12 * (len(repr(write.fields)) + len(repr(write.pending)) + logged)
    if bound <= MEASURED_ABOVE:
        return overhead + bound
    log = [
        (c.field, c.source, str(c.rule), *map(logged_value, (c.old, c.new, c.marketing, c.salesforce)))
        for c in write.log
    ]
    return overhead + sum(len(json.dumps(part, default=str)) for part in (write.fields, write.pending, log))


def _log_item(
    person_id: str, version: int, at: str, log: Sequence[FieldChange], expires: int
) -> ChangeLogItem:
    """One write's change log entry: its fields' old and new values, who changed them, which rule, and
    for a conflict both sides' values (``marketing``, ``salesforce``); a long value by its beginning
    (``domain.people.logged_value``)."""
    sources = sorted({c.source for c in log})
    changes = [
        {
            "field": c.field,
            "old": logged_value(c.old),
            "new": logged_value(c.new),
            **({"source": c.source} if len(sources) > 1 else {}),
            **({"rule": str(c.rule)} if c.rule else {}),
            **(
                {"marketing": logged_value(c.marketing), "salesforce": logged_value(c.salesforce)}
                if c.conflict is not None
                else {}
            ),
        }
        for c in log
    ]
    return ChangeLogItem(
        f"CHANGES#{person_id}",
        f"{at}#{version:010d}",
        source=",".join(sources),
        changes=changes,
        expires_at=expires,
    )


def _claim_key(email: str) -> tuple[str, str]:
    """The key of an email's claim: a digest, so the state table's keys carry no address."""
    return f"EMAIL#{hashlib.sha256(email.lower().encode()).hexdigest()}", "CLAIM"


def _email_of(fields: dict[str, Any]) -> str | None:
    email = fields.get("email")
    return email.lower() if isinstance(email, str) and email else None


class PeopleRepository:
    """The PeoplePort on DynamoDB: batch reads, batch writes of 25 for new people, transactions of
    conditional writes (with their change log, in the state table) for stored ones."""

    TRANSACTION_ITEMS = 100  # DynamoDB's limit: 100 people, or 50 with their change-log entries
    MAX_ATTEMPTS = 5  # a create or an erasure tried again when people change under it
    MAX_IDENTITIES = 100  # a person and the aliases that lead to it (merges, conversions)

    def __init__(
        self,
        table_name: str,
        log_table: str | None = None,
        log_days: int = 400,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        PersonItem.Meta.table_name = table_name
        if log_table:
            ChangeLogItem.Meta.table_name = log_table
        self.table_name = table_name
        self.log_days = log_days
        self.clock = clock  # stamps every write (synced_at) and says which month is the current one

    def _log_expiry(self) -> int:
        return int((self.clock() + timedelta(days=self.log_days)).timestamp())

    @_classified
    def lookup(self, person_ids: Sequence[str], *, full: bool = True) -> dict[str, PersonRef]:
        """Strongly consistent (identity and versions are decided on what this returns). A BatchGet
        costs the same read units whichever attributes it returns, but decoding every person's fields
        took 45 s of a 100k first copy's records (measured): identity alone, unless ``full``."""
        if not person_ids:
            return {}
        unique = list(dict.fromkeys(person_ids))
        wanted = (
            None if full else ["person_id", "digest", "sf_type", "alias_of", "version", "sf_id", "push_error"]
        )
        return {
            item.person_id: PersonRef(
                item.person_id,
                item.digest,
                item.sf_type,
                item.alias_of,
                version=int(item.version or 0),
                fields=(item.fields or {}) if full else None,
                pending=_map(item.pending) if full else None,
                sf_id=item.sf_id,
                push_error=item.push_error,
            )
            for item in PersonItem.batch_get(unique, consistent_read=True, attributes_to_get=wanted)
        }

    @_classified
    def alias(self, person_id: str, target_id: str, *, expected_version: int | None = None) -> bool:
        return not self.write([[AliasWrite(person_id, target_id, expected_version)]])

    @staticmethod
    def _item(change: PersonChange, now: str) -> PersonItem:
        email = change.fields.get("email")
        company = change.fields.get("sfdc_account_id")
        pushing = (
            bool(change.pending)
            and bool(change.sf_id)
            and not change.deleted
            and not change.not_visible
            and not change.parked
        )
        return PersonItem(
            change.person_id,
            sf_id=change.sf_id or None,
            sf_type=change.sf_type,
            email=email.lower() if isinstance(email, str) and email else None,
            company_id=company if isinstance(company, str) and company else None,
            fields=change.fields,
            digest=change.digest,
            sf_modstamp=change.system_modstamp or None,
            synced_at=now,
            change_bucket=change_bucket(change.person_id, now),
            version=(change.expected_version or 0) + 1,
            pending=change.pending or None,
            push_type=change.sf_type if pushing else None,
            pending_since=now if pushing else None,
            push_error=change.push_error,
        )

    @_classified
    def save(self, changes: Sequence[PersonChange]) -> list[str]:
        latest: dict[str, PersonChange] = {}
        for change in changes:  # one write per person even if a caller passed it twice
            latest[change.person_id] = change
        return self.write([[c] for c in latest.values()])

    @_classified
    def write(self, units: Sequence[Sequence[PersonChange | AliasWrite]]) -> list[str]:
        """Units packed into transactions of up to 100 items and TRANSACTION_BYTES (a unit never
        split), sent WRITERS at once; a unit whose condition failed is left out and the rest of its
        transaction goes again. Returns the person ids of the units left out."""
        now = to_stamp(self.clock())
        chunks: list[list[Sequence[PersonChange | AliasWrite]]] = [[]]
        items = payload = 0
        for unit in units:
            size = sum(_size(w) for w in unit)
            weight = sum(_bytes(w) for w in unit)
            if size > self.TRANSACTION_ITEMS:
                raise FatalError(f"a write of {size} items cannot be one DynamoDB transaction")
            if chunks[-1] and (items + size > self.TRANSACTION_ITEMS or payload + weight > TRANSACTION_BYTES):
                chunks.append([])
                items = payload = 0
            chunks[-1].append(unit)
            items += size
            payload += weight
        # a person is in one unit only, so the transactions never touch the same item: they may overlap
        answers = in_parallel(lambda chunk: self._transact(chunk, now), [c for c in chunks if c])
        return [person_id for conflicts in answers for person_id in conflicts]

    def _transact(self, units: list[Sequence[PersonChange | AliasWrite]], now: str) -> list[str]:
        """One transaction for the units; a unit with an item whose condition failed cancels it, and
        the rest go again without that unit (its ids are returned, for the caller to build afresh)."""
        conflicts: list[str] = []
        while units:
            try:
                with TransactWrite(connection=_connection(PersonItem)) as tx:
                    for unit in units:
                        for write in unit:
                            self._add(tx, write, now)
                return conflicts
            except TransactWriteError as exc:
                reasons = exc.cancellation_reasons or []
                failed = [
                    number
                    for number, reason in zip(_item_units(units), reasons, strict=False)
                    if reason is not None and reason.code == "ConditionalCheckFailed"
                ]
                if not failed:
                    raise RetriableError(f"could not save people: {exc.cause_response_message}") from exc
                conflicts += [w.person_id for n in dict.fromkeys(failed) for w in units[n]]
                units = [u for n, u in enumerate(units) if n not in failed]
        return conflicts

    def _add(self, tx: TransactWrite, write: PersonChange | AliasWrite, now: str) -> None:
        if isinstance(write, AliasWrite):
            held = (
                PersonItem.person_id.does_not_exist() | (PersonItem.alias_of == write.target_id)
                if write.expected_version is None
                else PersonItem.version == write.expected_version
            )
            tx.update(  # the version counts on whatever the item was: a stale writer never matches it
                PersonItem(write.person_id),
                actions=[
                    PersonItem.alias_of.set(write.target_id),
                    PersonItem.digest.set("alias"),
                    PersonItem.synced_at.set(now),
                    PersonItem.version.set((PersonItem.version | 0) + 1),
                    *(getattr(PersonItem, name).remove() for name in ALIAS_CLEARS),
                ],
                condition=held,
            )
            return
        condition = (
            PersonItem.person_id.does_not_exist()
            if write.expected_version is None
            else PersonItem.version == write.expected_version
        )
        tx.save(self._item(write, now), condition=condition)
        if write.log:
            tx.save(
                _log_item(
                    write.person_id, (write.expected_version or 0) + 1, now, write.log, self._log_expiry()
                )
            )

    @_classified
    def get(self, person_id: str) -> StoredPerson | None:
        try:
            return _person(PersonItem.get(person_id, consistent_read=True))
        except PersonItem.DoesNotExist:
            return None

    @_classified
    def by_salesforce_id(self, sf_id: str) -> list[StoredPerson]:
        """People carrying ``sf_id``: a Query on the keys-only index, then a BatchGet of those people."""
        keys = [item.person_id for item in PersonItem.by_sf_id.query(sf_id)]
        return [_person(item) for item in PersonItem.batch_get(keys)] if keys else []

    def ids_by_email(self, email: str, limit: int = 100, after: str | None = None) -> Page[str]:
        """One page of the people with ``email`` (any case): duplicates from the CRM are expected."""
        return self._ids(PersonItem.by_email, "email", email.lower(), limit, after)

    def ids_by_company(self, account_id: str, limit: int = 100, after: str | None = None) -> Page[str]:
        """One page of a company's people (contacts whose account it is)."""
        return self._ids(PersonItem.by_company, "company_id", account_id, limit, after)

    @_classified
    def _ids(
        self, index: GlobalSecondaryIndex[PersonItem], key: str, value: str, limit: int, after: str | None
    ) -> Page[str]:
        """A page of person ids from a keys-only index, and where the next page starts (None: last)."""
        start = {"person_id": {"S": after}, key: {"S": value}} if after else None
        result = index.query(value, limit=limit, last_evaluated_key=start)
        ids = [item.person_id for item in result]
        last = result.last_evaluated_key
        return Page(ids, str(last["person_id"]["S"]) if last else None)

    @_classified
    def changed_since(self, since: str, limit: int = 100, after: str | None = None) -> Page[str]:
        """One page of the people written (pulled, pushed, edited, by an action) at or after ``since``,
        a Salesforce-format stamp (``to_stamp``), by Queries of the by-change index, never a Scan.

        The walk (``domain.change_feed``) is shard-major: for each of the 8 shards, the months from
        ``since``'s to the current one, ascending. A person written again while a caller pages moves to
        the current month's bucket of its own shard (fixed by its id) with a later ``synced_at``: ahead
        of the reader, so never skipped; it may come back twice (only if rewritten while its shard is
        read). An alias has left the index. The index is eventually consistent, and a write's stamp is
        taken before it commits: a caller reading again takes its next ``since`` a margin before its
        previous read began. People last written before the index existed have no bucket and are not
        found until written again (a rewrite of each would add them; there is no backfill).

        Up to ``limit`` (1 to 1,000) ids, filled across buckets in at most MAX_QUERIES (64) Queries a
        call: a page may be short, or empty, with a ``next``; the walk has ended when ``next`` is None.
        ``after`` is a page's ``next``; InvalidRequestError for a malformed one, a bad ``since`` or
        ``limit``."""
        ids, position = read_changed(since, limit, after, self.clock, self._changed_in)
        return Page(ids, position)

    @staticmethod
    def _changed_in(
        bucket: str, since: str, start: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str]]:
        """One Query of a change bucket: (synced_at, person id) from ``since``, after ``start``."""
        start_key = (
            {"change_bucket": {"S": bucket}, "synced_at": {"S": start[0]}, "person_id": {"S": start[1]}}
            if start
            else None
        )
        result = PersonItem.by_change.query(
            bucket, PersonItem.synced_at >= since, limit=limit, last_evaluated_key=start_key
        )
        return [(item.synced_at, item.person_id) for item in result]

    @_classified
    def live_page(self, sf_type: str, after: str | None, limit: int) -> tuple[dict[str, str], str | None]:
        start = {"person_id": {"S": after}} if after else None
        # No filter expression: ``limit`` then bounds the items read, not only those returned.
        result = PersonItem.scan(limit=limit, last_evaluated_key=start, page_size=limit)
        page = {
            str(item.sf_id): item.person_id
            for item in result
            if item.sf_type == sf_type
            and item.sf_id
            and item.alias_of is None
            and not _hidden_or_deleted(item.fields or {})
        }
        last = result.last_evaluated_key
        return page, str(last["person_id"]["S"]) if last else None

    @_classified
    def log(self, person_id: str, changes: Sequence[FieldChange]) -> None:
        """A change-log entry of its own: an action's change that is not a field of the person (a
        campaign membership, a conversion, a merge). Its key ends in a random suffix, not a version."""
        if not changes:
            return
        item = _log_item(person_id, 0, to_stamp(self.clock()), changes, self._log_expiry())
        item.sk = f"{item.sk.rsplit('#', 1)[0]}#action-{uuid.uuid4().hex[:12]}"
        item.save()

    @_classified
    def delete(self, person_id: str) -> None:
        PersonItem(person_id).delete()

    @_classified
    def pending_ids(self, sf_type: str, limit: int) -> list[str]:
        return [item.person_id for item in PersonItem.pending_push.query(sf_type, limit=limit)]

    @_classified
    def pending_count(self, sf_type: str) -> int:
        """How many people of ``sf_type`` have marketing changes not yet pushed (a count of the sparse
        pending-push index: one read request while it is small)."""
        return PersonItem.pending_push.count(sf_type)

    def change_log(self, person_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A person's changes, newest first: when, the source, and each field's old and new value."""
        return self.change_log_page(person_id, limit).items

    @_classified
    def change_log_page(
        self, person_id: str, limit: int = 100, after: str | None = None
    ) -> Page[dict[str, Any]]:
        """One page of ``change_log``, and the entry the next page starts after (None: the last)."""
        pk = f"CHANGES#{person_id}"
        start = {"pk": {"S": pk}, "sk": {"S": after}} if after else None
        result = ChangeLogItem.query(pk, scan_index_forward=False, limit=limit, last_evaluated_key=start)
        entries = [
            {"at": item.sk.split("#", 1)[0], "source": item.source, "changes": item.changes}
            for item in result
        ]
        last = result.last_evaluated_key
        return Page(entries, str(last["sk"]["S"]) if last else None)

    @_classified
    def create(self, change: PersonChange) -> str:
        """Store a new person, unless one holds its email: returns the id of the person who holds it,
        ``change.person_id`` when this write (or an earlier try of the same request) made it.

        A live person (not an alias) with the email, in any case, holds it: the one named by the
        email's claim, an item written in the same transaction as each person this method makes and
        conditional on the claim being free (so of two concurrent creates one wins, where the
        eventually consistent by-email index could show neither the other), else one found by the
        index (people from Salesforce, who make no claim). A claim whose person has gone or changed
        its email is stale, and taken over by a write conditional on the person it still names."""
        email = _email_of(change.fields)
        for _ in range(self.MAX_ATTEMPTS):
            if self.get(change.person_id) is not None:
                return change.person_id
            holder, claimed = self._email_holder(email) if email else (None, None)
            if holder is not None:
                return holder
            try:
                with TransactWrite(connection=_connection(PersonItem)) as tx:
                    item = self._item(change, to_stamp(self.clock()))
                    tx.save(item, condition=PersonItem.person_id.does_not_exist())
                    if email:
                        free = (
                            EmailClaimItem.pk.does_not_exist()
                            if claimed is None
                            else EmailClaimItem.person_id == claimed
                        )
                        tx.save(
                            EmailClaimItem(*_claim_key(email), person_id=change.person_id), condition=free
                        )
                return change.person_id
            except TransactWriteError as exc:
                reasons = exc.cancellation_reasons or []
                if not any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons):
                    raise RetriableError(f"could not create a person: {exc.cause_response_message}") from exc
        raise RetriableError("people with this email kept changing while one was created; retrying")

    def _email_holder(self, email: str) -> tuple[str | None, str | None]:
        """The live person with ``email`` (None: nobody), and whom the email's claim names (None: no
        claim), for a stale claim to be taken over on that condition."""
        try:
            claimed: str | None = str(EmailClaimItem.get(*_claim_key(email), consistent_read=True).person_id)
        except EmailClaimItem.DoesNotExist:
            claimed = None
        if claimed is not None and (holder := self._live_with_email(claimed, email)) is not None:
            return holder, claimed
        for person_id in sorted(self.ids_by_email(email).items):
            if (holder := self._live_with_email(person_id, email)) is not None:
                return holder, claimed
        return None, claimed

    def _live_with_email(self, person_id: str, email: str) -> str | None:
        """Where ``person_id`` leads (following aliases), if that person has ``email``."""
        for _ in range(self.MAX_ATTEMPTS):
            person = self.get(person_id)
            if person is None:
                return None
            if person.alias_of is None:
                return person.person_id if (person.email or "").lower() == email else None
            person_id = person.alias_of
        return None

    @_classified
    def identities(self, person_id: str) -> list[str]:
        """The person's id, then every alias that leads to it (an alias of an alias too), by the
        sparse by-alias index: the merged-away and converted identities that were this person."""
        found, todo = [person_id], [person_id]
        while todo and len(found) < self.MAX_IDENTITIES:
            target = todo.pop()
            for item in PersonItem.by_alias.query(target):
                if item.person_id not in found:
                    found.append(item.person_id)
                    todo.append(item.person_id)
        return found

    @_classified
    def erase(self, person_id: str) -> bool:
        """Remove the person and its history: the change log of it and of every alias that leads to it,
        those aliases, and its email's claim; the person last, on the condition that it is still at
        the version read first (a write meanwhile, with its log entry, has the erasure go again).
        Each step is idempotent and the person goes last, so an erasure stopped part-way leaves the
        person, and erasing it again completes the rest. False when there is no such person."""
        for _ in range(self.MAX_ATTEMPTS):
            person = self.get(person_id)
            if person is None:
                return False
            identities = self.identities(person_id)
            for identity in identities:
                self._delete_change_log(identity)
            with PersonItem.batch_write() as batch:
                for alias in identities[1:]:
                    batch.delete(PersonItem(alias))
            if person.email:
                self._release_claim(person.email, person_id)
            try:
                PersonItem(person_id).delete(condition=PersonItem.version == person.version)
                return True
            except PynamoDBException as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
        raise RetriableError("the person kept changing while it was erased; retrying")

    def _delete_change_log(self, person_id: str) -> None:
        entries = ChangeLogItem.query(f"CHANGES#{person_id}", attributes_to_get=["pk", "sk"])
        with ChangeLogItem.batch_write() as batch:
            for entry in entries:
                batch.delete(entry)

    def _release_claim(self, email: str, person_id: str) -> None:
        """Drop the email's claim if it names this person (another's claim stays)."""
        try:
            EmailClaimItem(*_claim_key(email)).delete(condition=EmailClaimItem.person_id == person_id)
        except PynamoDBException as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def iterate(self, page_size: int = 500) -> Iterator[StoredPerson]:
        """Every person (a Scan): for reconciliation, tests and the demo only, never in a cycle."""
        for item in PersonItem.scan(page_size=page_size):
            yield _person(item)
