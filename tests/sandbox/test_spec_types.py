"""The conformance checker over every type of the spec: a minimal instance built from the
spec conforms, and dropping any required field, adding an unknown one or breaking a
discriminator is caught. Also every method's parameters parse from strings, as in forms."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.spec import FileUpload, Spec, _constant, load_spec

SPEC = load_spec()


def minimal(spec: Spec, t: str, depth: int = 0) -> Any:
    if t == "Integer":
        return 1
    if t == "Float":
        return 1.5
    if t == "Boolean":
        return True
    if t in ("String", "InputFile"):
        return "x"
    if t.startswith("Array of "):
        return [minimal(spec, t[len("Array of ") :], depth + 1)]
    assert depth < 12, f"required fields recurse through {t}"
    info = spec.types[t]
    if info.get("subtypes"):
        return minimal(spec, info["subtypes"][0], depth + 1)
    out: dict[str, Any] = {}
    for f in info.get("fields", []):
        if not f["required"]:
            continue
        const = _constant(t, f["name"], str(f.get("description", "")))
        out[f["name"]] = const if const is not None else minimal(spec, f["types"][0], depth + 1)
    return out


OBJECT_TYPES = sorted(
    name for name, info in SPEC.types.items() if info.get("fields") or info.get("subtypes")
)


def test_spec_is_the_bundled_one() -> None:
    assert SPEC.version == "Bot API 10.1"
    assert len(SPEC.methods) == 180 and len(SPEC.types) == 359


@pytest.mark.parametrize("type_name", OBJECT_TYPES)
def test_every_type(type_name: str) -> None:
    value = minimal(SPEC, type_name)
    assert SPEC.check(type_name, value) == []
    info = SPEC.types[type_name]
    if info.get("subtypes"):
        assert SPEC.check(type_name, 42)
        return
    assert SPEC.check(type_name, {**value, "no_such_field_xyz": 1})
    for f in info["fields"]:
        if f["required"]:
            broken = {k: v for k, v in value.items() if k != f["name"]}
            assert SPEC.check(type_name, broken), f"missing {f['name']} not caught"
            const = _constant(type_name, f["name"], str(f.get("description", "")))
            if const is not None:
                assert SPEC.check(type_name, {**value, f["name"]: const + "_other"})


@pytest.mark.parametrize("method", sorted(SPEC.methods))
def test_every_method_parses_form_strings(method: str) -> None:
    """Required parameters sent as form strings (JSON for objects) coerce to the spec types;
    leaving any one out is Telegram's 400."""
    import json

    fields = SPEC.methods[method].get("fields", [])
    raw: dict[str, Any] = {}
    for f in fields:
        if f["required"]:
            if f["types"] == ["InputFile"]:  # only an upload will do
                raw[f["name"]] = FileUpload("a.png", "image/png", b"png")
                continue
            value = minimal(SPEC, f["types"][0])
            raw[f["name"]] = value if isinstance(value, str) else json.dumps(value)
    parsed = SPEC.parse_request(method, raw, from_json=False)
    assert parsed.error is None and parsed.unknown == []
    for name in raw:
        missing = SPEC.parse_request(method, {k: v for k, v in raw.items() if k != name}, False)
        assert missing.error and missing.error.startswith("Bad Request: ")
