"""Form fields from a plugin's ``Params`` JSON schema, and form values back to options.

The studio draws the options of every installed generator and reward from the JSON schema of its
pydantic ``Params`` (`texkit.registry.Registry.schemas`), so a third-party plugin's options appear
without code here. Each property becomes one `FormField`: an enum a choice, a boolean a checkbox,
an integer or a number a number box, a string a text box, anything else (lists, objects, tuples) a
JSON text box. `collect_options` turns the widget values back into the options dict a run config
holds, keeping only the values that differ from the defaults; the options themselves are then
validated by the registry, so a wrong value gets the same one-line message as on the command line.
No gradio here (`texkit.studio.app` draws the widgets).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from texkit.errors import ConfigError

__all__ = ["FormField", "form_fields", "widget_value", "collect_options", "DEFAULT_CHOICE"]

Kind = Literal["choice", "bool", "optional_bool", "int", "number", "optional_number", "text", "json"]

DEFAULT_CHOICE = "(default)"
"""The choice of an optional boolean that leaves the option at its default."""


@dataclass(frozen=True)
class FormField:
    """One option of a ``Params`` model as a form field.

    Attributes:
        name: the option's key.
        kind: the widget: ``choice`` (enum), ``bool``, ``optional_bool`` (true / false / default),
            ``int``, ``number``, ``optional_number`` (a text box: empty leaves the default), ``text``
            or ``json`` (anything else, written as JSON).
        default: the option's default (JSON value; None when it has none).
        label: the schema's title (or the name).
        help: the schema's description.
        choices: the allowed values of a ``choice``.
        optional: the option also accepts null (an empty box leaves it at its default).
    """

    name: str
    kind: Kind
    default: Any = None
    label: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    optional: bool = False


def _plain_type(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The non-null member of an ``anyOf [X, null]`` and whether null is allowed."""
    members = prop.get("anyOf")
    if not members:
        return prop, False
    non_null = [m for m in members if m.get("type") != "null"]
    optional = len(non_null) < len(members)
    return (non_null[0] if len(non_null) == 1 else {}), optional


def _kind(prop: dict[str, Any], optional: bool) -> Kind:
    if "enum" in prop and all(isinstance(v, str) for v in prop["enum"]):
        return "choice"
    kind = prop.get("type")
    if kind == "boolean":
        return "optional_bool" if optional else "bool"
    if kind in ("integer", "number"):
        return "optional_number" if optional else ("int" if kind == "integer" else "number")
    if kind == "string":
        return "text"
    return "json"


def form_fields(schema: dict[str, Any], skip: Iterable[str] = ()) -> list[FormField]:
    """The form fields of a ``Params`` JSON schema, in the schema's order.

    Args:
        schema: ``model_json_schema()`` of a ``Params`` model.
        skip: option names not to show (e.g. the run-owned generator options).
    """
    skipped = set(skip)
    fields = []
    for name, prop in schema.get("properties", {}).items():
        if name in skipped:
            continue
        plain, optional = _plain_type(prop)
        kind = _kind(plain, optional)
        fields.append(
            FormField(
                name=name,
                kind=kind,
                default=prop.get("default"),
                label=str(prop.get("title") or name),
                help=" ".join(str(prop.get("description", "")).split()),
                choices=tuple(plain.get("enum", ())) if kind == "choice" else (),
                optional=optional,
            )
        )
    return fields


_UNSET = object()


def widget_value(field: FormField, value: Any = _UNSET) -> Any:
    """What the field's widget shows for an option value (default: the option's default)."""
    value = field.default if value is _UNSET else value
    if field.kind == "json":
        return "" if value is None else json.dumps(value)
    if field.kind == "optional_bool":
        return DEFAULT_CHOICE if value is None else ("true" if value else "false")
    if field.kind in ("text", "optional_number"):
        return "" if value is None else str(value)
    return value


def _parse(field: FormField, value: Any, owner: str) -> tuple[bool, Any]:
    """``(given, option value)`` of one widget value; not given: leave the option at its default."""
    if value is None or (isinstance(value, str) and not value.strip() and field.kind != "text"):
        return False, None
    if field.kind == "json":
        try:
            return True, json.loads(value)
        except json.JSONDecodeError as err:
            example = json.dumps(field.default) if field.default is not None else "a JSON value"
            raise ConfigError(f"{owner}: option '{field.name}' is not valid JSON ({err.msg}); write it like {example}") from None
    if field.kind == "optional_bool":
        return (False, None) if value == DEFAULT_CHOICE else (True, value == "true")
    if field.kind == "text" and field.optional and value == "":
        return False, None
    if field.kind == "optional_number":
        try:
            number = json.loads(value)
        except json.JSONDecodeError:
            return True, value.strip()  # not a number: the option's validation says so
        return True, number
    if field.kind == "int" and isinstance(value, float) and value.is_integer():
        return True, int(value)
    return True, value


def collect_options(fields: Sequence[FormField], values: Sequence[Any], owner: str) -> dict[str, Any]:
    """The options the widget values set: only those that differ from the defaults.

    Args:
        fields: the form fields, in widget order.
        values: one widget value per field.
        owner: who the options belong to, for messages (``"generator 'tiny'"``).

    Raises:
        ConfigError: a JSON field that does not parse (one line naming the option).
    """
    options: dict[str, Any] = {}
    for field, value in zip(fields, values, strict=True):
        given, parsed = _parse(field, value, owner)
        if given and parsed != field.default:
            options[field.name] = parsed
    return options
