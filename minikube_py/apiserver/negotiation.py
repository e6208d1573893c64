"""Content negotiation: decode request bodies (JSON, YAML, patches) and pick the output form.

Bodies are parsed defensively: a size cap, orjson's nesting limit for JSON, and for YAML
a loader that measures the document as it would expand (aliases included), so a
"billion laughs" document is refused before it costs memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from minikube_py import errors
from minikube_py.apiserver import protobuf

MAX_BODY = 3 * 1024 * 1024
MAX_YAML_NODES = 1_000_000
MAX_DEPTH = 1_000

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf"
YAML_TYPE = "application/yaml"
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
ACCEPTED_BODIES = "application/json, application/yaml, application/vnd.kubernetes.protobuf"


@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaRange]:
    ranges = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params = {}
        for f in fields[1:]:
            key, _, value = f.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(fields[0].lower(), params))
    return ranges


@dataclass(frozen=True)
class Output:
    """How to answer: ``json``/``yaml``, and as what (``Table``, ``PartialObjectMetadata``...)."""

    format: str
    as_kind: str = ""
    as_version: str = ""


@functools.lru_cache(maxsize=256)
def choose_output(accept: str, *, allow_table: bool = True) -> Output:
    """The first acceptable media range in the client's order, as kube-apiserver does.

    Cached: a client sends the same Accept header with every request (an unacceptable one
    raises, and is not cached).
    """
    if not accept.strip():
        return Output("json")
    for media in parse_accept(accept):
        fmt = _format_of(media.type)
        if fmt is None:
            continue
        as_kind = media.params.get("as", "")
        if not as_kind:
            return Output(fmt)
        group, version = media.params.get("g", ""), media.params.get("v", "")
        if group == "meta.k8s.io" and version in ("v1", "v1beta1"):
            if as_kind == "Table" and allow_table:
                return Output(fmt, "Table", version)
            if as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return Output(fmt, as_kind, version)
    raise errors.NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml"
    )


def _format_of(media_type: str) -> str | None:
    if media_type in (JSON_TYPE, "application/*", "*/*"):
        return "json"
    if media_type == YAML_TYPE:
        return "yaml"
    return None


def content_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def check_size(length: int | None) -> None:
    if length is not None and length > MAX_BODY:
        raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY}")


def decode_body(raw: bytes, media_type: str) -> Any:
    """Parse a request body by its media type; errors become 400 or 415."""
    check_size(len(raw))
    if not media_type:  # kube-apiserver reads a body without Content-Type as JSON
        media_type = JSON_TYPE
    if media_type in (JSON_TYPE, "application/json-patch+json") or media_type.endswith("+json"):
        return _decode_json(raw)
    if media_type in (YAML_TYPE, "application/apply-patch+yaml", "text/yaml", "application/x-yaml"):
        return decode_yaml(raw)
    if media_type == PROTOBUF_TYPE:
        return _decode_protobuf(raw)
    raise errors.UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{ACCEPTED_BODIES}"
    )


def _decode_protobuf(raw: bytes) -> Any:
    """kubectl's typed commands (``create configmap`` & co) send protobuf bodies."""
    try:
        obj, _unknown = protobuf.decode(raw)
    except protobuf.UnsupportedKindError as exc:
        raise errors.UnsupportedMediaType(str(exc)) from None
    except protobuf.ProtobufError as exc:
        raise errors.BadRequest(f"the body of the request could not be decoded: {exc}") from None
    return obj


def _decode_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(
            f"the body of the request could not be decoded as JSON: {exc}"
        ) from None


class _MeasuringLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents whose expansion (aliases counted) is huge."""

    def construct_document(self, node: yaml.Node) -> Any:
        _measure(node)
        return super().construct_document(node)


def _measure(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, expanded = stack.pop()
        if depth > MAX_DEPTH:
            raise errors.BadRequest("yaml: document is nested too deeply")
        children = _children(node)
        if not expanded and children:
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise errors.BadRequest("yaml: document contains excessive aliasing")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def decode_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_MeasuringLoader)
    except errors.APIError:
        raise
    except RecursionError:
        raise errors.BadRequest("yaml: document is nested too deeply") from None
    except yaml.YAMLError as exc:
        raise errors.BadRequest(
            f"the body of the request could not be decoded as YAML: {exc}"
        ) from None


def encode(obj: Any, fmt: str) -> tuple[bytes, str]:
    """Serialize an answer; YAML keys sorted, as kubectl's own YAML output is."""
    if fmt == "yaml":
        return yaml.safe_dump(obj, sort_keys=True).encode(), YAML_TYPE
    return orjson.dumps(obj), JSON_TYPE
