"""Checks of a serialized Earth Engine graph against the algorithm signatures the client
knows (offline: the ones shipped in the wheel, :func:`gbaugs.earthengine.offline_session`).
The one reader of a graph's JSON serialization."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gbaugs.earthengine.session import ee_module as _ee


def lint(obj: Any) -> list[str]:
    """Problems of every function call in ``obj``'s serialized graph (empty list: clean).

    Checks each ``functionInvocationValue`` against the algorithm signatures: the
    algorithm exists, every argument is one of its parameters, every required parameter
    is given. (``ee.ApiFunction.lookup`` returns None for unknown names instead of raising,
    so this is the check that catches them.)
    """
    ee = _ee()
    algorithms = ee.data.getAlgorithms()
    problems: list[str] = []
    for name, arguments in iter_calls(json.loads(obj.serialize(for_cloud_api=True))):
        args = set(arguments)
        sig = algorithms.get(name)
        if sig is None:
            problems.append(f"unknown algorithm {name}")
            continue
        params = {a["name"]: a for a in sig.get("args", [])}
        problems += [f"{name}: unknown argument {a!r}" for a in sorted(args - set(params))]
        problems += [f"{name}: missing required argument {p!r}" for p, spec in params.items()
                     if not spec.get("optional") and p not in args]
    return problems


def iter_calls(node: Any) -> Iterator[tuple[str, dict]]:
    """Every ``(functionName, arguments)`` of a serialized graph (any JSON node), depth first."""
    if isinstance(node, dict):
        call = node.get("functionInvocationValue")
        if isinstance(call, dict) and "functionName" in call:
            yield call["functionName"], call.get("arguments", {})
        for v in node.values():
            yield from iter_calls(v)
    elif isinstance(node, list):
        for v in node:
            yield from iter_calls(v)


def graph_size(obj: Any) -> dict[str, int]:
    """How large ``obj``'s serialized graph is: its bytes and its function calls (what a
    request carries; :mod:`gbaugs.mapping.earthengine` reports it)."""
    text = obj.serialize(for_cloud_api=True)
    return {"bytes": len(text.encode()), "calls": sum(1 for _ in iter_calls(json.loads(text)))}


def graph_digest(obj: Any) -> str:
    """SHA-256 of ``obj``'s serialized graph: what a computation *is* (the same digest, the
    same pixels), recorded where its result is not downloaded so a changed graph changes
    the record the next stages are keyed on."""
    import hashlib

    return hashlib.sha256(obj.serialize(for_cloud_api=True).encode()).hexdigest()
