"""Retry policies and the backoff formulas, as pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .durations import to_seconds
from .errors import InvalidRetryPolicyError

Backoff = Literal["constant", "linear", "exponential"]
BACKOFFS: tuple[Backoff, ...] = ("constant", "linear", "exponential")
MAX_RETRY_LIMIT = 10_000
DEFAULT_LIMIT = 5
DEFAULT_DELAY = 10.0
DEFAULT_BACKOFF: Backoff = "exponential"
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failed step is retried: ``limit`` retries, so ``limit + 1`` attempts."""

    limit: int = DEFAULT_LIMIT
    delay: float = DEFAULT_DELAY
    backoff: Backoff = DEFAULT_BACKOFF

    def wait_after(self, failed_attempts: int) -> float:
        """Seconds to wait after the n-th failed attempt (n starts at 1)."""
        return backoff_wait(self.backoff, self.delay, failed_attempts)


@dataclass(frozen=True, slots=True)
class StepConfig:
    """A step's retry policy and per-attempt timeout, with Cloudflare's defaults."""

    retries: RetryPolicy = RetryPolicy()
    timeout: float = DEFAULT_TIMEOUT

    def to_json(self) -> dict[str, Any]:
        return {
            "retries": {
                "limit": self.retries.limit,
                "delay": self.retries.delay,
                "backoff": self.retries.backoff,
            },
            "timeout": self.timeout,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepConfig:
        r = data["retries"]
        return cls(
            RetryPolicy(int(r["limit"]), float(r["delay"]), r["backoff"]), float(data["timeout"])
        )


def backoff_wait(backoff: Backoff, delay: float, failed_attempts: int) -> float:
    n = max(1, failed_attempts)
    if backoff == "constant":
        return delay
    if backoff == "linear":
        return delay * n
    return float(delay * 2 ** (n - 1))


def resolve_config(
    step_name: str, *, retries: object = None, timeout: object = None, config: object = None
) -> StepConfig:
    """Merge user options over the defaults; every mistake names the step and the fix."""
    if config is not None:
        if retries is not None or timeout is not None:
            raise InvalidRetryPolicyError(
                f"step {step_name!r}: pass either config=StepConfig(...) or retries=/timeout=, not both"
            )
        if isinstance(config, StepConfig):
            _check_timeout(step_name, config.timeout)
            _check_policy(step_name, config.retries)
            return config
        if isinstance(config, Mapping):
            unknown = set(config) - {"retries", "timeout"}
            if unknown:
                raise InvalidRetryPolicyError(
                    f"step {step_name!r}: unknown config key(s) {sorted(unknown)}; "
                    "allowed keys are 'retries' and 'timeout'"
                )
            return resolve_config(
                step_name, retries=config.get("retries"), timeout=config.get("timeout")
            )
        raise InvalidRetryPolicyError(
            f"step {step_name!r}: config must be a StepConfig or a mapping, not {type(config).__name__}"
        )
    policy = _policy(step_name, retries)
    seconds = DEFAULT_TIMEOUT
    if timeout is not None:
        seconds = to_seconds(timeout, what=f"step {step_name!r} timeout")
    _check_timeout(step_name, seconds)
    return StepConfig(policy, seconds)


def _check_timeout(step_name: str, seconds: float) -> None:
    if seconds <= 0:
        raise InvalidRetryPolicyError(
            f"step {step_name!r}: timeout must be greater than zero, e.g. timeout='2 minutes'"
        )


def _check_policy(step_name: str, policy: RetryPolicy) -> None:
    if isinstance(policy.limit, bool) or not isinstance(policy.limit, int):
        raise InvalidRetryPolicyError(f"step {step_name!r}: retries limit must be an integer")
    if not 0 <= policy.limit <= MAX_RETRY_LIMIT:
        raise InvalidRetryPolicyError(
            f"step {step_name!r}: retries limit must be between 0 and {MAX_RETRY_LIMIT}, got {policy.limit}"
        )
    if policy.backoff not in BACKOFFS:
        raise InvalidRetryPolicyError(
            f"step {step_name!r}: backoff must be one of {', '.join(BACKOFFS)}, got {policy.backoff!r}"
        )
    if policy.delay < 0:
        raise InvalidRetryPolicyError(f"step {step_name!r}: retry delay must not be negative")


def _policy(step_name: str, retries: object) -> RetryPolicy:
    if retries is None:
        return RetryPolicy()
    if isinstance(retries, RetryPolicy):
        policy = RetryPolicy(
            retries.limit, to_seconds(retries.delay, what="retry delay"), retries.backoff
        )
        _check_policy(step_name, policy)
        return policy
    if not isinstance(retries, Mapping):
        raise InvalidRetryPolicyError(
            f"step {step_name!r}: retries must be a RetryPolicy or a mapping with limit, delay and "
            f"backoff, not {type(retries).__name__}"
        )
    unknown = set(retries) - {"limit", "delay", "backoff"}
    if unknown:
        raise InvalidRetryPolicyError(
            f"step {step_name!r}: unknown retries key(s) {sorted(unknown)}; "
            "allowed keys are 'limit', 'delay' and 'backoff'"
        )
    limit = retries.get("limit", DEFAULT_LIMIT)
    delay = to_seconds(retries.get("delay", DEFAULT_DELAY), what=f"step {step_name!r} retry delay")
    policy = RetryPolicy(limit, delay, retries.get("backoff", DEFAULT_BACKOFF))
    _check_policy(step_name, policy)
    return policy
