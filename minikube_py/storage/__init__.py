"""Storage: the ``Store`` protocol and its SQLite and etcd backends.

Only the API server's registry uses this package.
"""

from minikube_py.storage.interface import (
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionConflict,
    Store,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    WatchStream,
)

__all__ = [
    "Compacted",
    "Event",
    "EventType",
    "KeyExists",
    "KeyNotFound",
    "KeyValue",
    "ListResult",
    "RevisionConflict",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "WatchStream",
]
