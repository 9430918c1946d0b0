"""The pure parts: durations, backoff, config merging, JSON limits, names, the state table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import perdure
from perdure.durations import to_seconds
from perdure.errors import InvalidDurationError, InvalidRetryPolicyError, PayloadError
from perdure.retry import RetryPolicy, StepConfig, backoff_wait, resolve_config
from perdure.serde import dumps
from perdure.states import TERMINAL, TRANSITIONS, Status, next_status


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (0.25, 0.25),
        (timedelta(minutes=2), 120.0),
        ("500 milliseconds", 0.5),
        ("10 seconds", 10.0),
        ("1 minute", 60.0),
        ("2 hours", 7200.0),
        ("3 days", 259200.0),
        ("1 week", 604800.0),
        ("30.5 seconds", 30.5),
        ("  7   second ", 7.0),
        ("12", 12.0),
    ],
)
def test_durations_are_seconds(value: object, seconds: float) -> None:
    assert to_seconds(value) == seconds


@pytest.mark.parametrize("value", ["3 fortnights", "soon", "-1 second", -1, True, None, [1], "nan"])
def test_a_bad_duration_is_an_error_not_a_guess(value: object) -> None:
    with pytest.raises(InvalidDurationError):
        to_seconds(value)


def test_backoff_follows_cloudflare_formulas() -> None:
    assert [backoff_wait("constant", 5, n) for n in (1, 2, 3)] == [5, 5, 5]
    assert [backoff_wait("linear", 5, n) for n in (1, 2, 3)] == [5, 10, 15]
    assert [backoff_wait("exponential", 5, n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]


def test_defaults_are_cloudflares() -> None:
    config = resolve_config("s")
    assert config == StepConfig(RetryPolicy(5, 10.0, "exponential"), 600.0)


def test_user_retry_options_merge_over_the_defaults() -> None:
    config = resolve_config("s", retries={"limit": 3, "delay": "5 seconds"}, timeout="2 minutes")
    assert config.retries == RetryPolicy(3, 5.0, "exponential") and config.timeout == 120.0
    assert resolve_config("s", config={"retries": {"limit": 1}}).retries.limit == 1
    with pytest.raises(InvalidRetryPolicyError, match="not both"):
        resolve_config("s", retries={"limit": 1}, config=StepConfig())
    with pytest.raises(InvalidRetryPolicyError, match="backoff must be one of"):
        resolve_config("s", retries={"backoff": "fibonacci"})
    with pytest.raises(InvalidRetryPolicyError, match="unknown config key"):
        resolve_config("s", config={"retry": {}})


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_any_json_value_encodes(value: object) -> None:
    dumps(value, what="x")


def test_non_json_values_name_their_place_and_type() -> None:
    with pytest.raises(PayloadError, match=r"holds a bytes at a\[1\]"):
        dumps({"a": [1, b"x"]}, what="params")
    with pytest.raises(PayloadError, match="float nan"):
        dumps(float("nan"), what="params")


def test_terminal_states_refuse_everything_but_restart() -> None:
    for status in TERMINAL:
        assert next_status("terminate", status) is None
        assert next_status("pause", status) is None
        assert next_status("resume", status) is None
        assert next_status("restart", status) == Status.QUEUED
    assert set(TRANSITIONS) == {"pause", "resume", "terminate", "restart"}


def test_the_public_names_are_pinned() -> None:
    assert perdure.__all__ == sorted(perdure.__all__)
    assert {
        "App",
        "Client",
        "NonRetryableError",
        "WorkflowEntrypoint",
        "WorkflowEvent",
        "WorkflowStep",
        "RetryPolicy",
        "StepConfig",
    } <= set(perdure.__all__)
    for name in perdure.__all__:
        assert hasattr(perdure, name), name
