"""pydantic's errors as one readable sentence per problem, naming the field."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wasmlet.errors import InvalidConfig, InvalidPayload, Problem
from wasmlet.registry.models import FunctionConfig
from wasmlet.validation import json_problem, label_of, problems


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(gt=0)
    limit: int = Field(1, ge=1, le=1000)
    name: str = Field("a", pattern=r"^[a-z]+$", max_length=5)
    flag: bool = False
    items: list[int] = Field(default_factory=list)


def _sentences(data: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(data)
    return [p.problem for p in problems(caught.value.errors())]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"minutes": 0}, "minutes must be greater than 0"),
        ({"minutes": "soon"}, "minutes must be a number"),
        ({}, "minutes is required"),
        ({"minutes": 1, "limit": 5000}, "limit must be at most 1000"),
        ({"minutes": 1, "limit": 1.5}, "limit must be an integer"),
        ({"minutes": 1, "name": "ABC"}, "name must match ^[a-z]+$"),
        ({"minutes": 1, "name": "abcdefgh"}, "name must be at most 5 characters long"),
        ({"minutes": 1, "flag": "perhaps"}, "flag must be true or false"),
        ({"minutes": 1, "items": [1, "x"]}, "items[1] must be an integer"),
        ({"minutes": 1, "colour": "red"}, "colour is not a known field"),
        ("text", "the value must be an object"),
    ],
)
def test_one_sentence_per_problem(data: object, expected: str) -> None:
    assert _sentences(data) == [expected]


def test_sentences_carry_no_repr_or_input() -> None:
    (sentence,) = _sentences({"minutes": {"type": "secret-input"}})
    assert "secret-input" not in sentence
    assert "{'" not in sentence


def test_label_is_written_as_json() -> None:
    assert label_of(("retry", "max_retries")) == "retry.max_retries"
    assert label_of(("triggers", 0, "cron")) == "triggers[0].cron"


def test_function_config_problems_name_the_config_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        FunctionConfig.parse({"timeout_ms": 0, "retry": {"max_retries": "x"}})
    assert caught.value.problems == (
        Problem("config.timeout_ms", "config.timeout_ms must be at least 1"),
        Problem("config.retry.max_retries", "config.retry.max_retries must be an integer"),
    )


def test_message_is_the_problems_when_none_given() -> None:
    error = InvalidPayload(problems=[Problem("query.a", "a is required"), Problem("q.b", "b!")])
    assert error.message == "a is required; b!"


def test_json_problem_has_no_line_numbers() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads("{\n\n nope")
    assert json_problem(caught.value) == (
        "expecting property name enclosed in double quotes at character 4"
    )
