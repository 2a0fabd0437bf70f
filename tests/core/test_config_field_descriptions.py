"""Every field of every run-config model has a description (the configuration reference shows it)."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from texkit.config import CameraConfig, CameraPath, ComponentConfig, RewardConfig, RunConfig


def _models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    """Pydantic models inside a field annotation (through Union, Optional, list, dict, tuple ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _reachable_models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """``root`` and every model reachable through its fields, each once, in discovery order."""
    found, todo = [], [root]
    while todo:
        model = todo.pop(0)
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            todo += _models_in(field.annotation)
    return found


def test_the_walk_reaches_every_nested_config_model():
    models = _reachable_models(RunConfig)
    # through plain fields, dict values (rewards) and unions (camera paths)
    assert {RunConfig, ComponentConfig, CameraConfig, CameraPath, RewardConfig} <= set(models)
    assert len(models) >= 10


def test_every_config_field_has_a_description():
    missing = [
        f"{model.__name__}.{name}"
        for model in _reachable_models(RunConfig)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert missing == [], "config fields without description=: " + ", ".join(missing)


def test_descriptions_reach_the_json_schema_the_reference_page_is_built_from():
    schema = RunConfig.model_json_schema()
    objects = {"RunConfig": schema, **schema["$defs"]}
    missing = [
        f"{name}.{key}"
        for name, definition in objects.items()
        for key, prop in definition.get("properties", {}).items()
        if not prop.get("description", "").strip()
    ]
    assert missing == [], "schema properties without description: " + ", ".join(missing)
