"""OpenAPI v3 documents: enough for kubectl to hand validation to the server.

kubectl 1.32 reads ``/openapi/v3``, then each group-version document; when the PATCH
operation of a kind takes a ``fieldValidation`` parameter it sends
``fieldValidation=Strict`` and trusts the server to check fields, instead of fetching
the protobuf OpenAPI v2 document for client-side validation. The component schemas come
from ``schemas`` (derived from the protobuf field tables): ``kubectl apply`` walks them to
compute its strategic merge patch and ``kubectl explain`` prints them, so each document
carries every schema its operations reach.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import orjson

from minikube_py.apiserver import schemas as kind_schemas
from minikube_py.meta.objects import Obj
from minikube_py.registry.catalog import Catalog
from minikube_py.registry.resource import ResourceInfo

SchemaSource = Callable[[ResourceInfo], tuple[dict[str, Obj], str]]
"""Per kind: (component schemas to add, name of the kind's own schema)."""

QUERY_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
OBJECT_VERBS = (("get", "get"), ("put", "put"), ("patch", "patch"), ("delete", "delete"))
OPERATION_PREFIX = {
    "get": "read",
    "list": "list",
    "put": "replace",
    "patch": "patch",
    "delete": "delete",
    "post": "create",
}


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


class OpenAPI:
    """Builds (once) and serves the v3 root and per group-version documents."""

    def __init__(
        self, catalog: Catalog, schemas: SchemaSource = kind_schemas.schema_source
    ) -> None:
        self.documents: dict[str, bytes] = {}
        for group, version in catalog.group_versions():
            document = self._document(catalog.resources(group, version), schemas)
            self.documents[gv_path(group, version)] = orjson.dumps(document)
        self._v2: bytes | None = None
        self.hashes = {
            path: hashlib.sha512(body).hexdigest()[:64].upper()
            for path, body in self.documents.items()
        }

    def v2(self) -> bytes:
        """A Swagger 2.0 document (``/openapi/v2``, JSON) with every definition, built on
        first use from the v3 components: for clients that still read v2."""
        if self._v2 is None:
            definitions: Obj = {}
            for body in self.documents.values():
                definitions.update(orjson.loads(body)["components"]["schemas"])
            text = orjson.dumps(definitions).replace(b"#/components/schemas/", b"#/definitions/")
            document = {
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": {},
                "definitions": orjson.loads(text),
            }
            self._v2 = orjson.dumps(document)
        return self._v2

    def root(self) -> Obj:
        return {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
                for path, digest in self.hashes.items()
            }
        }

    def _document(self, infos: list[ResourceInfo], schemas: SchemaSource) -> Obj:
        paths: Obj = {}
        offered: dict[str, Obj] = {}
        for info in infos:
            found, name = schemas(info)
            offered.update(found)
            gvk = {"group": info.group, "version": info.version, "kind": info.kind}
            ref = {"$ref": f"#/components/schemas/{name}"}
            listed = {"$ref": f"#/components/schemas/{name}List"} if name + "List" in found else ref
            paths[self._object_path(info)] = {
                verb: self._operation(info, gvk, ref, verb, action) for verb, action in OBJECT_VERBS
            }
            paths[self._collection_path(info)] = {
                "get": self._operation(info, gvk, listed, "get", "list"),
                "post": self._operation(info, gvk, ref, "post", "post"),
            }
        # Every $ref must resolve inside the document: kubectl resolves them against its
        # components only, and an unresolved one fails `apply` and `explain` alike.
        known = {**kind_schemas.library(), **offered}
        components = kind_schemas.closure(kind_schemas.refs(paths), known)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": dict(sorted(components.items()))},
        }

    @staticmethod
    def _base(info: ResourceInfo) -> str:
        return f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"

    def _collection_path(self, info: ResourceInfo) -> str:
        namespace = "/namespaces/{namespace}" if info.namespaced else ""
        return f"{self._base(info)}{namespace}/{info.plural}"

    def _object_path(self, info: ResourceInfo) -> str:
        return self._collection_path(info) + "/{name}"

    @staticmethod
    def _operation(info: ResourceInfo, gvk: Obj, ref: Obj, verb: str, action: str) -> Obj:
        parameters = [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in QUERY_PARAMETERS
        ]
        operation: Obj = {
            "operationId": f"{OPERATION_PREFIX[action]}{info.kind}",
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
            },
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        }
        if verb in ("put", "post", "patch"):
            types = (
                ["application/json"]
                if verb != "patch"
                else [
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                    "application/apply-patch+yaml",
                ]
            )
            operation["requestBody"] = {
                "content": {t: {"schema": ref} for t in types},
                "required": True,
            }
        return operation
