"""Field types and base models shared by the API schemas."""

from __future__ import annotations

import functools
import re
import types
import typing
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    model_validator,
)

from service.refs import not_uuid_shaped


def _find_nul(value: Any, at: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and "\x00" in key:
                return (*at, key)
            if (found := _find_nul(inner, (*at, key))) is not None:
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            if (found := _find_nul(inner, (*at, index))) is not None:
                return found
    return None


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped; no text in it may
    hold a NUL character (``service.nul_guard`` says why)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _as_sent(cls, data: Any) -> Any:
        if (found := _find_nul(data)) is not None:
            place = ".".join(str(p) for p in found) or "the body"
            raise ValueError(f"{place} contains a NUL character")
        if isinstance(data, dict):
            # JSON types as sent: pydantic would read `false` as 0 and "7" as 7.
            for name, kind in _scalar_fields(cls).items():
                value = data.get(name)
                if value is None:
                    continue
                if (kind == "boolean") != isinstance(value, bool) or isinstance(value, str):
                    raise ValueError(f"{name} must be a JSON {kind}")
        return data


def _json_kind(annotation: Any) -> str | None:
    """ "boolean", "integer" or "number" for a field of that type (optional or not)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _json_kind(args[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {_json_kind(a) for a in args if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    return {bool: "boolean", int: "integer", float: "number"}.get(annotation)


@functools.cache
def _scalar_fields(model: type[BaseModel]) -> dict[str, str]:
    fields = {name: _json_kind(f.annotation) for name, f in model.model_fields.items()}
    return {name: kind for name, kind in fields.items() if kind is not None}


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"),
    AfterValidator(not_uuid_shaped),
]


def _trimmed(value: str) -> str:
    return value.strip()


def _trimmed_not_blank(value: str) -> str:
    if not (trimmed := value.strip()):
        raise ValueError("must not be blank")
    return trimmed


# Text is stored trimmed, but its length limits hold for the text as sent, as the schema
# states them: trimming first let 201 characters with a leading space through a 200 limit.
TRIMMED = AfterValidator(_trimmed)
NOT_BLANK = AfterValidator(_trimmed_not_blank)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NOT_BLANK]
Title = Annotated[str, StringConstraints(min_length=1, max_length=500), NOT_BLANK]
Text = Annotated[str, StringConstraints(max_length=20_000)]


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    # pydantic would also take a number, or a string of digits, as seconds since 1970.
    if not (isinstance(value, date) or isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
