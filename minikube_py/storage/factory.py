"""Choose and open a backend from what the user gave: ``--etcd-servers`` or a data dir.

Like kine, a backend is picked by URL scheme: ``http://`` is etcd (a comma-separated list
of members), ``sqlite://`` or a plain path is the embedded store.
"""

from __future__ import annotations

import os
from pathlib import Path

from minikube_py.storage.interface import Store
from minikube_py.storage.sqlite import CompactionPolicy, SQLiteStore

DB_FILE = "state.db"


async def open_store(
    *,
    data_dir: Path | None = None,
    etcd_servers: str | None = None,
    compaction: CompactionPolicy | None = None,
) -> Store:
    """etcd when servers are given, else ``<data_dir>/state.db``."""
    if etcd_servers:
        from minikube_py.storage.etcd import EtcdStore  # grpc only when etcd is asked for

        return await EtcdStore.open(etcd_servers)
    return await SQLiteStore.open((data_dir or default_data_dir()) / DB_FILE, compaction)


async def open_url(url: str) -> Store:
    """``http://h:p[,...]`` for etcd, ``sqlite:///path/to/file.db`` or a path for SQLite."""
    if url.startswith("http://"):
        from minikube_py.storage.etcd import EtcdStore

        return await EtcdStore.open(url)
    return await SQLiteStore.open(_expand(url.removeprefix("sqlite://")))


def default_data_dir() -> Path:
    return _expand("~/.minikube-py")


def _expand(path: str) -> Path:
    return Path(os.path.expanduser(path))
