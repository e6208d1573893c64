"""An API server subprocess per backend, shared by a module's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.apiserver import Server, running_apiserver
from tests.support.etcd import EtcdCluster
from tests.support.requirements import require_binary


@pytest.fixture(scope="module", params=["sqlite", "etcd"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    require_binary("kubectl")
    tmp = tmp_path_factory.mktemp(f"apiserver-{request.param}")
    servers = ""
    if request.param == "etcd":
        cluster: EtcdCluster = request.getfixturevalue("etcd")
        servers = cluster.endpoints
    with running_apiserver(tmp, etcd_servers=servers) as running:
        yield running


@pytest.fixture
def namespace(server: Server) -> str:
    """A fresh namespace per test, so tests never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    status, body = server.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    return name
