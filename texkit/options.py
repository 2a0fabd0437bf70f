"""Typed options for every plugin kind: pydantic ``Params`` models and one-line validation errors.

Rewards, renderers and generators all declare their options as a pydantic model with
``extra="forbid"`` (llm's ``Model.Options`` pattern). `validate_options` builds it from a
dict and turns *every* validation error into one `ConfigError` line,
suggesting the closest valid name for a misspelt key. `params_from_signature` derives such a
model from a plain factory's keyword arguments, for plugins written before ``Params`` existed.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

import pydantic

from texkit.errors import ConfigError

__all__ = ["validate_options", "params_from_signature", "strict_model", "options_schema", "parse_key_values"]


def parse_key_values(items: list[str], what: str = "--param") -> dict[str, Any]:
    """``["k=v", ...]`` from the command line -> dict; values are parsed as JSON when they can be
    (numbers, lists, booleans, quoted strings), else kept as the plain string.

    Raises:
        ConfigError: an item without ``=`` (the message starts with ``what``).
    """
    import json

    params: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{what} '{item}' must look like key=value")
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def strict_model(model: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """``model`` itself when it says how to treat unknown keys, else a subclass that forbids them."""
    if model.model_config.get("extra") in ("forbid", "allow"):
        return model
    return type(model.__name__, (model,), {"model_config": pydantic.ConfigDict(extra="forbid")})


def _describe_error(error: dict[str, Any], valid: list[str]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "?"
    if error.get("type") == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][0]), valid, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown option '{where}'{hint}"
    return f"option '{where}': {error['msg']}"


def validate_options(model: type[pydantic.BaseModel], values: dict[str, Any], what: str) -> pydantic.BaseModel:
    """Build ``model`` from ``values``; every problem in one ConfigError line.

    Args:
        model: the ``Params`` model.
        values: the options as written in the config.
        what: who the options are for, e.g. ``"generator 'tiny'"`` (starts the message).

    Raises:
        ConfigError: ``"generator 'tiny': unknown option 'lora_rnak'; did you mean 'lora_rank'?
            (valid options: ...)"``; several errors are joined with ``"; "``.
    """
    strict = strict_model(model)
    try:
        return strict(**values)
    except pydantic.ValidationError as err:
        valid = list(model.model_fields)
        problems = "; ".join(_describe_error(e, valid) for e in err.errors())
        raise ConfigError(f"{what}: {problems} (valid options: {', '.join(valid) or 'none'})") from None


def params_from_signature(factory: Callable[..., Any], name: str) -> type[pydantic.BaseModel]:
    """A ``Params`` model from a factory's keyword parameters (annotations and defaults kept).

    Used for factories registered without an explicit ``Params``; ``**kwargs`` factories accept
    any key (the model then allows extra keys).
    """
    fields: dict[str, Any] = {}
    extra = "forbid"
    for param in inspect.signature(factory).parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            continue
        annotation = Any if param.annotation is inspect.Parameter.empty or isinstance(param.annotation, str) else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    config = pydantic.ConfigDict(extra=extra, arbitrary_types_allowed=True)
    return pydantic.create_model(f"{name.title().replace('-', '')}Params", __config__=config, **fields)


def options_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """JSON schema of a ``Params`` model (what ``texkit plugins --json`` and the docs show)."""
    try:
        return model.model_json_schema()
    except Exception as err:  # a field type without a JSON form: say so instead of failing the listing
        return {"title": model.__name__, "description": f"schema unavailable: {err}"}
