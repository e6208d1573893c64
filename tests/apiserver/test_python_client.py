"""The official ``kubernetes`` Python client against the API server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.support.apiserver import Server


@pytest.fixture
def core(server: Server) -> Iterator[client.CoreV1Api]:
    configuration = client.Configuration()
    configuration.host = server.url
    with client.ApiClient(configuration) as api:
        yield client.CoreV1Api(api)


def configmap(name: str, **labels: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels or None), data={"k": name}
    )


def test_create_read_patch_delete(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, configmap("one", app="x"))
    assert created.metadata.uid
    read = core.read_namespaced_config_map("one", namespace)
    assert read.data == {"k": "one"}
    patched = core.patch_namespaced_config_map("one", namespace, {"data": {"k": "patched"}})
    assert patched.data == {"k": "patched"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    core.delete_namespaced_config_map("one", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("one", namespace)
    assert missing.value.status == 404


def test_list_with_pagination_and_selectors(core: client.CoreV1Api, namespace: str) -> None:
    for i in range(7):
        core.create_namespaced_config_map(namespace, configmap(f"cm{i}", parity=str(i % 2)))
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        pages += 1
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count is not None
    assert names == [f"cm{i}" for i in range(7)]
    assert pages == 3
    odd = core.list_namespaced_config_map(namespace, label_selector="parity=1")
    assert [item.metadata.name for item in odd.items] == ["cm1", "cm3", "cm5"]
    named = core.list_namespaced_config_map(namespace, field_selector="metadata.name=cm4")
    assert [item.metadata.name for item in named.items] == ["cm4"]


def test_watch_with_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, configmap("watched"))
    core.patch_namespaced_config_map("watched", namespace, {"data": {"k": "v2"}})
    core.delete_namespaced_config_map("watched", namespace)
    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=10
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            stream.stop()
    assert seen == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]


def test_errors_are_statuses(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, configmap("dup"))
    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(namespace, configmap("dup"))
    assert duplicate.value.status == 409
    assert '"reason":"AlreadyExists"' in duplicate.value.body.replace(" ", "")
