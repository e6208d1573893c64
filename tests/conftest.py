"""Shared fixtures: real etcd for the whole session, fresh stores per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from minikube_py.storage.etcd import EtcdStore
from minikube_py.storage.interface import Store
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import EtcdCluster, etcd_cluster
from tests.support.requirements import require_binary


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """One real single-member etcd on a free loopback port, for the whole run."""
    binary = require_binary("etcd")
    with etcd_cluster(binary, tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "etcd"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each backend in turn: the conformance suite runs unchanged against both."""
    opened: Store
    if request.param == "sqlite":
        opened = await SQLiteStore.open(tmp_path / "state.db")
    else:
        cluster: EtcdCluster = request.getfixturevalue("etcd")
        opened = await EtcdStore.open(cluster.endpoints)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def root() -> str:
    """A key prefix no other test uses, so tests can share one etcd."""
    return f"/registry/test-{uuid.uuid4().hex[:12]}/"
