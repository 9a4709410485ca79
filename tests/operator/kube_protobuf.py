"""Decode the Kubernetes protobuf bodies that ``kubectl create`` and ``helm`` send.

Typed clients (``kubectl create secret|namespace|serviceaccount|configmap|quota``, Helm's
release storage) send ``application/vnd.kubernetes.protobuf``: the bytes ``k8s\\0`` and a
``runtime.Unknown`` message holding the type (apiVersion, kind) and the object's own
protobuf encoding. :func:`decode` turns the kinds below into the JSON the emulator stores;
any other kind raises :class:`ValueError` (answered as 415, so the gap is visible).

The field numbers are those of ``k8s.io/api/core/v1/generated.proto`` and
``k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto``; only the fields these kinds use
in practice are mapped (unknown fields are skipped).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# A schema maps field number -> (JSON name, type); types: "str", "bytes", "int", "bool",
# "time", "map", "bmap" (string -> bytes), "qmap" (string -> Quantity), a nested schema
# (dict), or a one-element list of either for repeated fields.
TIME = "time"
OWNER = {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"), 5: ("apiVersion", "str"),
         6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")}
META = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
        5: ("uid", "str"), 6: ("resourceVersion", "str"), 7: ("generation", "int"),
        8: ("creationTimestamp", TIME), 9: ("deletionTimestamp", TIME),
        10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", "map"),
        12: ("annotations", "map"), 13: ("ownerReferences", [OWNER]),
        14: ("finalizers", ["str"])}
NAME_REF = {1: ("name", "str")}
OBJECT_REF = {1: ("kind", "str"), 2: ("namespace", "str"), 3: ("name", "str")}
KINDS: dict[str, dict[int, tuple[str, Any]]] = {
    "Secret": {1: ("metadata", META), 2: ("data", "bmap"), 3: ("type", "str"),
               4: ("stringData", "map"), 5: ("immutable", "bool")},
    "ConfigMap": {1: ("metadata", META), 2: ("data", "map"), 3: ("binaryData", "bmap"),
                  4: ("immutable", "bool")},
    "Namespace": {1: ("metadata", META), 2: ("spec", {1: ("finalizers", ["str"])})},
    "ServiceAccount": {1: ("metadata", META), 2: ("secrets", [OBJECT_REF]),
                       3: ("imagePullSecrets", [NAME_REF]),
                       4: ("automountServiceAccountToken", "bool")},
    "ResourceQuota": {1: ("metadata", META), 2: ("spec", {1: ("hard", "qmap"),
                                                          2: ("scopes", ["str"])})},
}
UNKNOWN = {1: ("typeMeta", {1: ("apiVersion", "str"), 2: ("kind", "str")}),
           2: ("raw", "bytes"), 3: ("contentEncoding", "str"), 4: ("contentType", "str")}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: varints as int, length-delimited as bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            out.append((number, buf[pos:pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"protobuf wire type {wire} is not supported")
    return out


def _pair(raw: bytes) -> tuple[str, bytes]:
    entry = dict(fields(raw))
    return bytes(entry.get(1, b"")).decode(), bytes(entry.get(2, b""))


def _value(kind: Any, raw: int | bytes) -> Any:
    if isinstance(kind, dict):
        return message(bytes(raw), kind)
    if kind == "str":
        return bytes(raw).decode()
    if kind == "bytes":
        return bytes(raw)
    if kind in ("int", "bool"):
        return bool(raw) if kind == "bool" else int(raw)
    if kind == TIME:
        seconds = int(dict(fields(bytes(raw))).get(1, 0))
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise ValueError(f"unknown field kind {kind!r}")


def message(buf: bytes, schema: dict[int, tuple[str, Any]]) -> dict[str, Any]:
    """One message decoded by ``schema`` into a JSON-ready dict (unknown fields skipped)."""
    out: dict[str, Any] = {}
    for number, raw in fields(buf):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind in ("map", "bmap", "qmap"):
            key, value = _pair(bytes(raw))
            if kind == "map":
                out.setdefault(name, {})[key] = value.decode()
            elif kind == "bmap":
                out.setdefault(name, {})[key] = base64.b64encode(value).decode()
            else:
                out.setdefault(name, {})[key] = bytes(dict(fields(value)).get(1, b"")).decode()
        elif isinstance(kind, list):
            out.setdefault(name, []).append(_value(kind[0], raw))
        else:
            out[name] = _value(kind, raw)
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object (``k8s\\0`` + runtime.Unknown) as its JSON form."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf body (no k8s\\0 prefix)")
    unknown = message(body[len(MAGIC):], UNKNOWN)
    type_meta = unknown.get("typeMeta") or {}
    kind = type_meta.get("kind", "")
    if kind not in KINDS:
        raise ValueError(f"protobuf bodies of kind {kind!r} are not decoded by the emulator "
                         f"(only {', '.join(sorted(KINDS))}); send JSON")
    obj = message(unknown.get("raw", b""), KINDS[kind])
    return {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind, **obj}
