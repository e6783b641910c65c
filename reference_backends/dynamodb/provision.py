"""Creating the backend's table, and probing what an endpoint and table offer when a backend opens.

DynamoDB engines differ where the backend depends on them. Not every engine returns the item a
condition failed on (``ReturnValuesOnConditionCheckFailure=ALL_OLD``; AWS and moto do, dynalite
does not, and silently answers without it): the backend must know which, because an answer
without an item means "absent" on one engine and "not told" on the other. And native TTL may be
off, on another attribute, or impossible (dynalite has no ``UpdateTimeToLive``; IAM may deny it
on AWS); the backend stays correct without it, but expired records then stay in the table until
``cleanup_expired``, so each open says so the same way, by the ``missing_ttl`` option.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from pmcp_tasks.errors import BackendError
from reference_backends.causes import describe
from reference_backends.dynamodb.table import PK, SK, TTL

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MissingTtl = Literal["error", "warn", "ignore"]
MISSING_TTL_CHOICES: tuple[MissingTtl, ...] = ("error", "warn", "ignore")

PROBE_PK = "pmcp-tasks-probe"
"""``pk`` of the one item the probe leaves in a table: it has no ``#``, so no namespace owns it."""
_PROBE_SK = "all-old"
_TTL_ON = ("ENABLED", "ENABLING")


class TtlWarning(UserWarning):
    """Native TTL is not deleting this table's expired records (see :mod:`.features`)."""


@dataclass(frozen=True, slots=True)
class TableFeatures:
    """The probe's findings for one endpoint and table.

    ``returns_old_item``: a failed conditional write returns the item it failed on.
    ``ttl``: the table's native TTL as the endpoint reports it, e.g. ``"ENABLED on 'ttl'"``;
    ``ttl_problem`` is the explanation when that is not TTL on :data:`~.table.TTL`, else None.
    """

    returns_old_item: bool
    ttl: str
    ttl_problem: str | None


def check_missing_ttl(value: str) -> MissingTtl:
    """``value`` as a :data:`MissingTtl`; ValueError naming the choices otherwise."""
    for choice in MISSING_TTL_CHOICES:
        if value == choice:
            return choice
    raise ValueError(f"missing_ttl must be one of {', '.join(MISSING_TTL_CHOICES)}, not {value!r}")


def probe_table(client: DynamoDBClient, table: str) -> TableFeatures:
    """Ask the endpoint about ``table``: its TTL, then whether failed conditions return items.

    Blocking (run it in a thread from async code). A missing table, refused credentials or an
    unreachable endpoint raise ``BackendError`` naming the table and the cause.
    """
    ttl, problem = _ttl_state(client, table)
    return TableFeatures(_returns_old_item(client, table), ttl, problem)


def report_ttl(problem: str | None, table: str, missing_ttl: MissingTtl) -> None:
    """Warn (:class:`TtlWarning`), raise ``BackendError`` or stay silent about a TTL problem."""
    if problem is None or missing_ttl == "ignore":
        return
    message = (
        f"native TTL does not clean DynamoDB table {table!r} ({problem}): expired "
        "records are never returned, but they stay in the table until cleanup_expired() "
        f"deletes them. Enable TTL on attribute {TTL!r} (aws dynamodb update-time-to-live "
        f"--table-name {table} --time-to-live-specification Enabled=true,AttributeName={TTL}), "
        "or pass missing_ttl='ignore' where the engine has no TTL"
    )
    if missing_ttl == "error":
        raise BackendError(message)
    warnings.warn(message, TtlWarning, stacklevel=3)


def create_table(
    client: DynamoDBClient, table_name: str, *, missing_ttl: MissingTtl = "warn"
) -> None:
    """Create the backend's table: on-demand billing, native TTL on :data:`~.table.TTL`.

    The backend itself never creates tables (a typo in a table name must fail, not silently
    provision a new table and bill for it); call this once from deployment code or tests.
    Waits until the table is active, which takes seconds on AWS. When the endpoint refuses to
    enable TTL (dynalite has no ``UpdateTimeToLive``; IAM may deny it), the table stays and
    ``missing_ttl`` decides, as it does on every later open: warn, raise or stay silent.
    """
    missing_ttl = check_missing_ttl(missing_ttl)
    try:
        client.create_table(
            TableName=table_name,
            KeySchema=[
                {"AttributeName": PK, "KeyType": "HASH"},
                {"AttributeName": SK, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": PK, "AttributeType": "S"},
                {"AttributeName": SK, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(
            f"could not create DynamoDB table {table_name!r}: {describe(exc)}"
        ) from exc
    try:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL},
        )
    except (BotoCoreError, ClientError) as exc:
        report_ttl(f"UpdateTimeToLive refused: {describe(exc)}", table_name, missing_ttl)


def _ttl_state(client: DynamoDBClient, table: str) -> tuple[str, str | None]:
    try:
        description = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    except ClientError as exc:
        if _code(exc) in ("ResourceNotFoundException", "ResourceNotFound"):  # AWS, moto
            raise BackendError(
                f"DynamoDB table {table!r} does not exist; create it with "
                "reference_backends.dynamodb.create_table"
            ) from exc
        if _code(exc) in ("UnknownOperationException", "AccessDeniedException"):
            return "unknown", f"DescribeTimeToLive refused: {describe(exc)}"
        raise _unusable(table, exc) from exc
    except BotoCoreError as exc:
        raise _unusable(table, exc) from exc
    status = description.get("TimeToLiveStatus", "DISABLED")
    attribute = description.get("AttributeName")
    state = f"{status} on {attribute!r}" if attribute else status
    if status in _TTL_ON and attribute == TTL:
        return state, None
    return state, f"TimeToLiveStatus is {state}"


def _returns_old_item(client: DynamoDBClient, table: str) -> bool:
    """Fail a condition on the probe item on purpose and see whether the item comes back.

    The probe item is written first, unconditionally, so the condition ``attribute_not_exists``
    fails unless someone deletes the item in between; then the write just succeeds and we try
    again. The item stays: writing it is idempotent and it belongs to no namespace.
    """
    item: dict[str, Any] = {PK: {"S": PROBE_PK}, SK: {"S": _PROBE_SK}}
    try:
        for _ in range(3):
            client.put_item(TableName=table, Item=item)
            try:
                client.put_item(
                    TableName=table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": PK},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                return bool(exc.response.get("Item"))
    except (BotoCoreError, ClientError) as exc:
        raise _unusable(table, exc) from exc
    raise BackendError(
        f"could not probe DynamoDB table {table!r}: its probe item (pk {PROBE_PK!r}) was "
        "deleted during each of 3 tries"
    )


def _unusable(table: str, exc: Exception) -> BackendError:
    return BackendError(f"cannot use DynamoDB table {table!r}: {describe(exc)}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
