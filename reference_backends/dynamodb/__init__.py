"""DynamoDB reference backend (extra ``dynamodb``): one table, conditional writes, native TTL.

Importing this package needs boto3; without it the import fails with the command that installs
the extra, so that ``pytest --backend=dynamodb`` and users get an actionable message instead of
a bare ``ModuleNotFoundError`` from deep inside the package.
"""

from __future__ import annotations

try:
    import boto3  # noqa: F401
    import botocore  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by tests/test_extras.py in a subprocess
    raise ImportError(
        "the DynamoDB backend needs boto3, which is not installed: "
        "pip install 'pmcp-tasks[dynamodb]'"
    ) from exc

from reference_backends.dynamodb.backend import DynamoDbBackend
from reference_backends.dynamodb.kit import kit_factory
from reference_backends.dynamodb.provision import TableFeatures, TtlWarning, create_table
from reference_backends.dynamodb.table import MAX_RECORD_BYTES

__all__ = [
    "MAX_RECORD_BYTES",
    "DynamoDbBackend",
    "TableFeatures",
    "TtlWarning",
    "create_table",
    "kit_factory",
]
