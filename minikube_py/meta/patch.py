"""What the three PATCH flavours share: the error they raise, strict JSON helpers, and the
strategic merge schema (data: which lists merge, and by which key).

The flavours live beside this module: ``jsonpatch`` (RFC 6902), ``mergepatch`` (RFC 7386) and
``strategic`` (Kubernetes strategic merge patch; its :data:`SCHEMA` is kept here, as data, so
the engine stays small). All are pure functions over decoded JSON (dict, list, str, int, float,
bool, None) that never mutate their inputs nor share structure with them: the result is the
caller's to edit.

HTTP mapping, as kube-apiserver 1.32 does it
(``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go``: ``applyJSPatch``,
``interpretStrategicMergePatchError``; ``apimachinery/pkg/api/errors``
``NewGenericServerResponse``; ``handlers/responsewriters/status.go`` ``ErrorToAPIStatus``):

- 400 BadRequest, ``message`` = the error text: a patch document that does not decode (a JSON
  patch that is not a list of objects, a merge patch that is null or a scalar, a strategic patch
  that is not an object) and the strategic directives kube calls "bad patch format"
  (``$retainKeys``, ``$setElementOrder``, ``$deleteFromPrimitiveList``).
- 413 RequestEntityTooLarge, ``message`` = "Request entity too large: " + the error text: a JSON
  patch of more than 10,000 operations.
- 422 Invalid: a JSON patch that decodes but does not apply (a failed ``test``, a missing path,
  ``copy`` operations growing the document by more than 3 MiB) and a strategic patch with a
  list of lists. kube builds these with NewGenericServerResponse, so the body says only "the
  server rejected our request due to an error in our request" with empty ``details`` (kubectl
  prints "The request is invalid: ..."); the real reason is dropped, which is why
  :attr:`PatchError.message` keeps it for our logs.
- 500 with an empty ``reason``, ``message`` = the error text: every other strategic merge error
  (missing merge key, ``$patch: merge``, mixed element types, ...). kube returns these as plain Go
  errors, which ErrorToAPIStatus turns into an unexplained 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BAD_REQUEST = 400
TOO_LARGE = 413
INVALID = 422
INTERNAL = 500

_REASONS = {
    BAD_REQUEST: "BadRequest",
    TOO_LARGE: "RequestEntityTooLarge",
    INVALID: "Invalid",
    INTERNAL: "",
}
_INVALID_MESSAGE = "the server rejected our request due to an error in our request"


class PatchError(ValueError):
    """A patch that cannot be decoded or applied; ``code`` is the HTTP status kube would use."""

    def __init__(self, message: str, *, code: int = INVALID) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def reason(self) -> str:
        """The Status ``reason`` kube-apiserver sends with ``code``."""
        return _REASONS.get(self.code, "")

    @property
    def status_message(self) -> str:
        """The Status ``message`` kube-apiserver sends: for 422 it hides the real cause."""
        if self.code == INVALID:
            return _INVALID_MESSAGE
        if self.code == TOO_LARGE:
            return f"Request entity too large: {self.message}"
        return self.message


def copy_json(value: Any) -> Any:
    """A deep copy of decoded JSON, so results never alias the caller's objects."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def scalar_key(value: Any) -> tuple[str, Any]:
    """A hashable identity for a JSON scalar that keeps ``true``, ``1`` and ``1.0`` apart.

    Go compares decoded JSON by dynamic type (bool, int64, float64, string), Python does not
    (``True == 1 == 1.0``); merge keys and primitive sets must follow Go.
    """
    return (type(value).__name__, value)


def json_equal(left: Any, right: Any) -> bool:
    """Structural equality with Go's typing of scalars (see :func:`scalar_key`)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return False
    return scalar_key(left) == scalar_key(right)


def go_repr(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` for decoded JSON, so error texts read like kube's."""
    if isinstance(value, dict):
        items = " ".join(f"{key}:{go_repr(value[key])}" for key in sorted(value))
        return f"map[{items}]"
    if isinstance(value, list):
        return "[" + " ".join(go_repr(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def go_type_name(value: Any) -> str:
    """The Go type ``encoding/json`` decodes ``value`` into, as kube names it in errors."""
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string" if isinstance(value, str) else "<nil>"


def json_kind(value: Any) -> str:
    """The JSON kind word ``encoding/json`` uses in "cannot unmarshal <kind> into ..."."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "null"


# -- strategic merge schema --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldStrategy:
    """How a strategic merge patch treats one field: the Go struct tags of k8s.io/api as data.

    ``type`` names the field's schema type (for a list, the elements' type) so the merge can
    descend into it; ``strategy`` is the ``patchStrategy`` tag ("merge", "replace",
    "retainKeys", "merge,retainKeys", or "" for the default: maps merge, lists replace);
    ``merge_key`` is ``patchMergeKey``. retainKeys only matters to clients computing patches:
    the server honours ``$retainKeys`` wherever a patch carries it.
    """

    type: str | None = None
    strategy: str = ""
    merge_key: str = ""

    @property
    def merges(self) -> bool:
        return "merge" in self.strategy.split(",")

    @property
    def replaces(self) -> bool:
        return "replace" in self.strategy.split(",")


_CORE = "io.k8s.api.core.v1."
_APPS = "io.k8s.api.apps.v1."
_BATCH = "io.k8s.api.batch.v1."
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = _META + "ObjectMeta"
POD_TEMPLATE_SPEC = _CORE + "PodTemplateSpec"

_SET = FieldStrategy(strategy="merge")
"""A primitive list merged as an ordered set (finalizers, podCIDRs)."""
_CONDITIONS = FieldStrategy(strategy="merge", merge_key="type")
_TEMPLATE = {"template": FieldStrategy(POD_TEMPLATE_SPEC)}


def _by(merge_key: str, type_name: str | None = None, strategy: str = "merge") -> FieldStrategy:
    return FieldStrategy(type_name, strategy, merge_key)


def _object(spec: str | None = None, status: str | None = None) -> dict[str, FieldStrategy]:
    """A top-level kind: ObjectMeta, and spec/status of the given types when it has them."""
    fields = {"metadata": FieldStrategy(OBJECT_META)}
    if spec:
        fields["spec"] = FieldStrategy(spec)
    if status:
        fields["status"] = FieldStrategy(status)
    return fields


def _workload(group: str, kind: str) -> dict[str, dict[str, FieldStrategy]]:
    """A controller kind whose spec has a pod template and whose status has conditions."""
    return {
        group + kind: _object(group + kind + "Spec", group + kind + "Status"),
        group + kind + "Spec": _TEMPLATE,
        group + kind + "Status": {"conditions": _CONDITIONS},
    }


_CONTAINER = {
    "ports": _by("containerPort"),
    "env": _by("name"),
    "volumeMounts": _by("mountPath"),
    "volumeDevices": _by("devicePath"),
}

_PLAIN_KINDS = (
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Endpoints",
    "io.k8s.api.core.v1.Event",
    "io.k8s.api.core.v1.LimitRange",
    "io.k8s.api.core.v1.ResourceQuota",
    "io.k8s.api.core.v1.PersistentVolume",
    "io.k8s.api.apps.v1.ControllerRevision",
    "io.k8s.api.coordination.v1.Lease",
    "io.k8s.api.discovery.v1.EndpointSlice",
    "io.k8s.api.events.v1.Event",
    "io.k8s.api.networking.v1.Ingress",
    "io.k8s.api.networking.v1.IngressClass",
    "io.k8s.api.networking.v1.NetworkPolicy",
    "io.k8s.api.rbac.v1.Role",
    "io.k8s.api.rbac.v1.ClusterRole",
    "io.k8s.api.rbac.v1.RoleBinding",
    "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "io.k8s.api.scheduling.v1.PriorityClass",
    "io.k8s.api.storage.v1.StorageClass",
    "io.k8s.api.node.v1.RuntimeClass",
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
)

SCHEMA: dict[str, dict[str, FieldStrategy]] = {
    OBJECT_META: {
        "finalizers": _SET,
        "ownerReferences": _by("uid", _META + "OwnerReference"),
    },
    # core/v1: pods and their templates
    _CORE + "Pod": _object(_CORE + "PodSpec", _CORE + "PodStatus"),
    _CORE + "PodTemplate": {"metadata": FieldStrategy(OBJECT_META), **_TEMPLATE},
    POD_TEMPLATE_SPEC: {
        "metadata": FieldStrategy(OBJECT_META),
        "spec": FieldStrategy(_CORE + "PodSpec"),
    },
    _CORE + "PodSpec": {
        "volumes": _by("name", _CORE + "Volume", "merge,retainKeys"),
        "initContainers": _by("name", _CORE + "Container"),
        "containers": _by("name", _CORE + "Container"),
        "ephemeralContainers": _by("name", _CORE + "EphemeralContainer"),
        "imagePullSecrets": _by("name"),
        "hostAliases": _by("ip"),
        "topologySpreadConstraints": _by("topologyKey"),
        "schedulingGates": _by("name"),
        "resourceClaims": _by("name", None, "merge,retainKeys"),
        # tolerations, readinessGates, resizePolicy (in Container): no tag, so lists replace
    },
    _CORE + "Container": _CONTAINER,
    _CORE + "EphemeralContainer": _CONTAINER,
    _CORE + "PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": _by("ip"),
        "hostIPs": _by("ip"),
        "resourceClaimStatuses": _by("name", None, "merge,retainKeys"),
        # containerStatuses and friends: no tag, so lists replace
    },
    # core/v1: the rest
    _CORE + "Node": _object(_CORE + "NodeSpec", _CORE + "NodeStatus"),
    _CORE + "NodeSpec": {"podCIDRs": _SET},  # taints: no tag, replace
    _CORE + "NodeStatus": {"conditions": _CONDITIONS, "addresses": _by("type")},
    _CORE + "Service": _object(_CORE + "ServiceSpec", _CORE + "ServiceStatus"),
    _CORE + "ServiceSpec": {"ports": _by("port")},
    _CORE + "ServiceStatus": {"conditions": _CONDITIONS},
    _CORE + "Namespace": _object(None, _CORE + "NamespaceStatus"),
    _CORE + "NamespaceStatus": {"conditions": _CONDITIONS},
    _CORE + "ServiceAccount": {**_object(), "secrets": _by("name")},
    _CORE + "PersistentVolumeClaim": _object(None, _CORE + "PersistentVolumeClaimStatus"),
    _CORE + "PersistentVolumeClaimStatus": {"conditions": _CONDITIONS},
    **_workload(_CORE, "ReplicationController"),
    # apps/v1
    **_workload(_APPS, "Deployment"),
    **_workload(_APPS, "ReplicaSet"),
    **_workload(_APPS, "StatefulSet"),
    **_workload(_APPS, "DaemonSet"),
    _APPS + "DeploymentSpec": {**_TEMPLATE, "strategy": FieldStrategy(strategy="retainKeys")},
    # batch/v1
    **_workload(_BATCH, "Job"),
    _BATCH + "CronJob": _object(_BATCH + "CronJobSpec"),
    _BATCH + "CronJobSpec": {"jobTemplate": FieldStrategy(_BATCH + "JobTemplateSpec")},
    _BATCH + "JobTemplateSpec": {
        "metadata": FieldStrategy(OBJECT_META),
        "spec": FieldStrategy(_BATCH + "JobSpec"),
    },
    # policy/v1 and autoscaling/v2
    "io.k8s.api.policy.v1.PodDisruptionBudget": _object(
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
    ),
    "io.k8s.api.policy.v1.PodDisruptionBudgetSpec": {"selector": FieldStrategy(strategy="replace")},
    "io.k8s.api.policy.v1.PodDisruptionBudgetStatus": {"conditions": _CONDITIONS},
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler": _object(
        None, "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus"
    ),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus": {"conditions": _CONDITIONS},
    **{kind: _object() for kind in _PLAIN_KINDS},
}
"""Strategic merge metadata per OpenAPI type name, from the ``patchStrategy`` and
``patchMergeKey`` tags of k8s.io/api 1.32 (the same data the OpenAPI document publishes as
``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``). Only fields that need more
than the defaults are listed, plus the fields that lead to them."""

_DEFAULT = FieldStrategy()


def field_strategy(type_name: str | None, field: str) -> FieldStrategy:
    """The :data:`SCHEMA` entry for ``field`` of ``type_name``, or the defaults."""
    return SCHEMA.get(type_name or "", {}).get(field, _DEFAULT)


_GROUP_PACKAGES = {
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration.k8s.io": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}


def kind_type_name(api_version: str, kind: str) -> str:
    """The OpenAPI type name of a kind, the key of :data:`SCHEMA`: ``apps/v1``, ``Deployment``
    gives ``io.k8s.api.apps.v1.Deployment`` (groups are named by their first label)."""
    group, _, version = api_version.rpartition("/")
    package = _GROUP_PACKAGES.get(group) or f"io.k8s.api.{group.split('.')[0] or 'core'}"
    return f"{package}.{version}.{kind}"
