"""Property-based tests: any input to a create-request or connection model is either accepted
and round-trips, or refused with a message that names the field; nothing deeper ever escapes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from runmonitor.domain.schedule import PollSchedule
from runmonitor.services import registry
from runmonitor.storage.settings.model import NotificationPrefs, Profile, Settings

SERVICES = sorted(registry())
MODELS: list[tuple[str, type[BaseModel]]] = [
    *[(f"{key}.request", registry()[key].request_model) for key in SERVICES],
    *[(f"{key}.connection", registry()[key].config_model) for key in SERVICES],
    ("NotificationPrefs", NotificationPrefs),
    ("PollSchedule", PollSchedule),
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "https://example.com/api",
            "http://10.0.0.1:8080",
            "ftp://x",
            "2026-11-22T10:00:00Z",
            "22:00",
            "not a date",
            "00000000-0000-0000-0000-000000000000",
            "\x00\u202e<b>x</b>",
            "9" * 400,
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def inputs(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    fields = list(model.model_fields)
    known = st.dictionaries(st.sampled_from(fields), values, max_size=len(fields)) if fields else st.just({})
    stray = st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=2)
    return st.tuples(known, stray, st.booleans()).map(lambda t: {**t[0], **(t[1] if t[2] else {})})


def check(model: type[BaseModel], data: dict[str, Any]) -> None:
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        assert exc.errors(), "a refusal must say what is wrong"
        for error in exc.errors():
            assert error["msg"], error
            location = error["loc"]
            # Model-wide rules may have no location; then the message itself names the field.
            if location:
                assert str(location[0]) in model.model_fields or str(location[0]) in data, error
            else:
                assert any(name in error["msg"] for name in model.model_fields), error
        text = str(exc)
        for value in data.values():
            if isinstance(value, str) and len(value) >= 12 and value.isprintable():
                assert value not in text, "input echoed in the error (hide_input_in_errors)"
        return
    dumped = instance.model_dump(mode="json")
    again = model.model_validate(dumped)
    assert again.model_dump(mode="json") == dumped
    for value in dumped.values():
        if isinstance(value, float):
            assert math.isfinite(value)


@pytest.mark.parametrize(("name", "model"), MODELS, ids=[name for name, _ in MODELS])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_input_is_accepted_and_round_trips_or_refused_naming_the_field(
    name: str, model: type[BaseModel], data: st.DataObject
) -> None:
    check(model, data.draw(inputs(model)))


@settings(max_examples=150, deadline=None)
@given(
    service=st.sampled_from(SERVICES),
    connection=st.dictionaries(st.text(max_size=12), values, max_size=5),
    name=values,
)
def test_profiles_from_any_input_are_valid_or_refused_cleanly(
    service: str, connection: dict[str, Any], name: Any
) -> None:
    try:
        profile = Profile.model_validate({"service": service, "name": name, "connection": connection})
    except ValidationError as exc:
        assert all(error["msg"] for error in exc.errors())
        return
    settings_doc = Settings(profiles=[profile]).model_dump(mode="json")
    assert Settings.model_validate(settings_doc).profiles[0].id == profile.id
