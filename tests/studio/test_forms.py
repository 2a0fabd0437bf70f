"""Option forms from ``Params`` JSON schemas (`texkit.studio.forms`): every kind of field, and values back to options."""

from __future__ import annotations

from typing import Literal, Optional

import pydantic
import pytest

from texkit.errors import ConfigError
from texkit.options import options_schema
from texkit.studio.forms import DEFAULT_CHOICE, collect_options, form_fields, widget_value


class Params(pydantic.BaseModel):
    """A third party's options, one of each kind."""

    model_config = pydantic.ConfigDict(extra="forbid")
    mode: Literal["sharp", "smooth"] = "sharp"
    steps: int = pydantic.Field(4, ge=1, description="DDIM steps. More is slower.")
    scale: float = 7.5
    tiny: bool = False
    local: Optional[bool] = None
    path: Optional[str] = None
    name: str = "x"
    colors: list[str] = ["#ff0000"]
    alpha: Optional[float] = None


@pytest.fixture
def fields():
    return form_fields(options_schema(Params), skip=["name"])


def test_each_schema_type_becomes_its_widget_kind(fields):
    kinds = {f.name: f.kind for f in fields}
    assert kinds == {"mode": "choice", "steps": "int", "scale": "number", "tiny": "bool", "local": "optional_bool", "path": "text",
                     "colors": "json", "alpha": "optional_number"}
    by_name = {f.name: f for f in fields}
    assert by_name["mode"].choices == ("sharp", "smooth")
    assert by_name["steps"].help == "DDIM steps. More is slower." and by_name["steps"].label == "Steps"
    assert by_name["path"].optional and by_name["alpha"].optional and not by_name["steps"].optional


def test_defaults_give_no_options_and_changes_give_exactly_them(fields):
    shown = [widget_value(f) for f in fields]
    assert shown == ["sharp", 4, 7.5, False, DEFAULT_CHOICE, "", '["#ff0000"]', ""]  # an empty box: the default (None)
    assert collect_options(fields, shown, "x") == {}
    changed = ["smooth", 8.0, 7.5, True, "false", "/w", '["#00ff00", "#0000ff"]', "0.5"]
    options = collect_options(fields, changed, "x")
    assert options == {"mode": "smooth", "steps": 8, "tiny": True, "local": False, "path": "/w", "colors": ["#00ff00", "#0000ff"], "alpha": 0.5}
    assert isinstance(options["steps"], int)
    assert Params(**options).steps == 8  # what the form collects validates


def test_widget_value_shows_a_given_value(fields):
    colors = next(f for f in fields if f.name == "colors")
    assert widget_value(colors, ["#123456"]) == '["#123456"]'


def test_a_json_field_that_does_not_parse_is_one_line_naming_the_option(fields):
    values = [widget_value(f) for f in fields]
    values[6] = '["#00ff00"'
    with pytest.raises(ConfigError) as err:
        collect_options(fields, values, "generator 'tiny'")
    assert str(err.value).startswith("generator 'tiny': option 'colors' is not valid JSON (") and "\n" not in str(err.value)
    assert 'write it like ["#ff0000"]' in str(err.value)


def test_a_bad_number_is_left_to_the_options_own_validation(fields):
    values = [widget_value(f) for f in fields]
    values[1] = 0
    values[7] = "abc"
    options = collect_options(fields, values, "x")
    assert options["steps"] == 0 and options["alpha"] == "abc"  # the registry says what is wrong, as on the command line
    with pytest.raises(pydantic.ValidationError):
        Params(**options)


def test_installed_generators_and_rewards_all_have_forms():
    from texkit.registry import get_registry
    from texkit.session import RUN_OWNED_OPTIONS

    schemas = get_registry().schemas()
    tiny = {f.name: f for f in form_fields(schemas["generators"]["tiny"], RUN_OWNED_OPTIONS)}
    assert "steps" in tiny and not set(RUN_OWNED_OPTIONS) & set(tiny)
    assert tiny["lora_targets"].kind == "json" and tiny["compile"].kind == "choice"
    for name, schema in schemas["rewards"].items():
        fields = form_fields(schema)
        assert collect_options(fields, [widget_value(f) for f in fields], name) == {}, name
