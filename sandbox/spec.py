"""The official Bot API spec (bot-api-spec.json, see PROVENANCE.md): request parsing and
validation, and conformance checks for everything the sandbox emits."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

PRIMITIVES = {"Integer", "String", "Boolean", "Float", "InputFile"}
# Fields newer than the bundled spec (Bot API 10.3) that current clients already require:
# aiogram 3.31 refuses a ChatMemberAdministrator without can_send_welcome_messages.
NEWER_FIELDS: dict[str, set[str]] = {
    "ChatMemberAdministrator": {"can_send_welcome_messages"},
    "ChatAdministratorRights": {"can_send_welcome_messages"},
}
_ALWAYS = re.compile(r"always [“\"]([^”\"]+)[”\"]")


@dataclass
class FileUpload:
    """A file posted in a multipart body."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedRequest:
    params: dict[str, Any]
    unknown: list[str] = field(default_factory=list)
    error: str | None = None


class Spec:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.version: str = raw.get("version", "")
        self.methods: dict[str, Any] = raw["methods"]
        self.types: dict[str, Any] = raw["types"]
        self._by_lower = {name.lower(): name for name in self.methods}

    def method_name(self, name: str) -> str | None:
        """Telegram matches method names case-insensitively."""
        return self._by_lower.get(name.lower())

    # --- requests -------------------------------------------------------------------------

    def parse_request(self, method: str, raw: dict[str, Any], from_json: bool) -> ParsedRequest:
        """Coerce raw values (strings from forms, JSON values) to the spec's types.

        ``error`` is Telegram's description for the first missing or malformed field."""
        spec_fields = {f["name"]: f for f in self.methods[method].get("fields", [])}
        out: dict[str, Any] = {}
        unknown = sorted(k for k in raw if k not in spec_fields)
        for name, f in spec_fields.items():
            value = raw.get(name)
            if value is None or (not from_json and value == "" and name not in ("text",)):
                if f["required"]:
                    return ParsedRequest(out, unknown, f"Bad Request: {_empty_message(name)}")
                continue
            ok, coerced = self._coerce(f["types"], value)
            if not ok:
                return ParsedRequest(out, unknown, f"Bad Request: can't parse {name}")
            out[name] = coerced
            if isinstance(coerced, dict | list):
                # Fields the spec does not know, inside objects (reply_markup.…): logged too.
                unknown += [
                    e.split(":", 1)[0]
                    for e in self.check_any(f["types"], coerced, name)
                    if " has no field " in e
                ]
        return ParsedRequest(out, unknown)

    def _coerce(self, types: list[str], value: Any) -> tuple[bool, Any]:
        for t in types:
            ok, coerced = self._coerce_one(t, value)
            if ok:
                return True, coerced
        return False, None

    def _coerce_one(self, t: str, value: Any) -> tuple[bool, Any]:
        if isinstance(value, FileUpload):
            return t == "InputFile", value
        if t == "InputFile":
            return False, None
        if t == "Integer":
            if isinstance(value, bool):
                return False, None
            if isinstance(value, int):
                return True, value
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
                return True, int(value)
            return False, None
        if t == "Float":
            if isinstance(value, bool):
                return False, None
            if isinstance(value, int | float):
                return True, float(value)
            try:
                return True, float(value)
            except (TypeError, ValueError):
                return False, None
        if t == "Boolean":
            if isinstance(value, bool):
                return True, value
            if isinstance(value, int) and value in (0, 1):
                return True, bool(value)
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return True, value.lower() in ("true", "1")
            return False, None
        if t == "String":
            if isinstance(value, str):
                return True, value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return True, str(value)
            return False, None
        # An object or an array: forms carry it JSON-serialized.
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return False, None
        if t.startswith("Array of "):
            if not isinstance(value, list):
                return False, None
            inner = t[len("Array of ") :]
            items = []
            for item in value:
                ok, coerced = self._coerce_one(inner, item)
                if not ok:
                    return False, None
                items.append(coerced)
            return True, items
        if not isinstance(value, dict):
            return False, None
        if self.check(t, value, strict=False):
            return False, None
        return True, value

    # --- conformance ----------------------------------------------------------------------

    def check(self, t: str, value: Any, path: str = "$", strict: bool = True) -> list[str]:
        """Every way ``value`` breaks type ``t``; empty when it conforms.

        ``strict`` also flags fields the spec does not define."""
        if t == "Integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
            return [] if ok else [f"{path}: expected Integer, got {value!r:.60}"]
        if t == "Float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return [] if ok else [f"{path}: expected Float, got {value!r:.60}"]
        if t == "String":
            return [] if isinstance(value, str) else [f"{path}: expected String, got {value!r:.60}"]
        if t == "Boolean":
            ok = isinstance(value, bool)
            return [] if ok else [f"{path}: expected Boolean, got {value!r:.60}"]
        if t == "InputFile":
            return [] if isinstance(value, FileUpload | str) else [f"{path}: expected InputFile"]
        if t.startswith("Array of "):
            if not isinstance(value, list):
                return [f"{path}: expected {t}"]
            inner = t[len("Array of ") :]
            errors: list[str] = []
            for i, item in enumerate(value):
                errors += self.check(inner, item, f"{path}[{i}]", strict)
            return errors
        spec = self.types.get(t)
        if spec is None:
            return [f"{path}: unknown type {t}"]
        if spec.get("subtypes"):
            best: list[str] | None = None
            for sub in spec["subtypes"]:
                errs = self.check(sub, value, path, strict)
                if not errs:
                    return []
                if best is None or len(errs) < len(best):
                    best = errs
            return [f"{path}: matches no subtype of {t}"] + (best or [])
        if not isinstance(value, dict):
            return [f"{path}: expected {t} object, got {value!r:.60}"]
        errors = []
        fields = {f["name"]: f for f in spec.get("fields", [])}
        for name, f in fields.items():
            if name not in value:
                if f["required"]:
                    errors.append(f"{path}.{name}: required field of {t} is missing")
                continue
            sub_errors = self.check_any(f["types"], value[name], f"{path}.{name}", strict)
            errors += sub_errors
            desc = f.get("description", "")
            const = _constant(t, name, desc if isinstance(desc, str) else " ".join(desc))
            if const is not None and not sub_errors and value[name] != const:
                errors.append(f"{path}.{name}: must be {const!r} in {t}")
        if strict:
            newer = NEWER_FIELDS.get(t, set())
            errors += [
                f"{path}.{k}: {t} has no field {k}"
                for k in value
                if k not in fields and k not in newer
            ]
        return errors

    def check_any(self, types: list[str], value: Any, path: str, strict: bool = True) -> list[str]:
        best: list[str] = []
        for i, t in enumerate(types):
            errs = self.check(t, value, path, strict)
            if not errs:
                return []
            if i == 0 or len(errs) < len(best):
                best = errs
        return best

    def check_result(self, method: str, value: Any) -> list[str]:
        return self.check_any(self.methods[method]["returns"], value, f"{method}()")


@cache
def _constant(type_name: str, field_name: str, description: str) -> str | None:
    """Discriminator fields: the spec says e.g. 'always “member”'."""
    m = _ALWAYS.search(description)
    if m and field_name in ("type", "status", "source"):
        return m.group(1)
    return None


def _empty_message(name: str) -> str:
    special = {"text": "message text is empty", "chat_id": "chat_id is empty"}
    return special.get(name, f"parameter {name} is required")


@cache
def load_spec() -> Spec:
    text = resources.files("sandbox").joinpath("bot-api-spec.json").read_text("utf-8")
    return Spec(json.loads(text))
