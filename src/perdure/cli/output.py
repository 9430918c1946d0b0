"""What the CLI prints: JSON for scripts, aligned tables for people, colour only on a terminal."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

import click

STATUS_COLOURS = {
    "complete": "green",
    "success": "green",
    "done": "green",
    "received": "green",
    "errored": "red",
    "failure": "red",
    "terminated": "red",
    "running": "cyan",
    "retrying": "yellow",
    "queued": "blue",
    "waiting": "blue",
    "sleeping": "blue",
    "paused": "yellow",
    "waitingForPause": "yellow",
}


def colour_enabled(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set to anything (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Printer:
    """One per command: knows whether to print JSON and whether to colour."""

    def __init__(self, *, as_json: bool = False, colour: bool | None = None) -> None:
        self.as_json = as_json
        self.colour = colour_enabled(sys.stdout) if colour is None else colour

    # -- basics

    def echo(self, text: str = "", *, err: bool = False, nl: bool = True) -> None:
        click.echo(text, err=err, nl=nl, color=self.colour)

    def style(self, text: str, **styles: Any) -> str:
        return click.style(text, **styles) if self.colour else text

    def dim(self, text: str) -> str:
        return self.style(text, dim=True)

    def bold(self, text: str) -> str:
        return self.style(text, bold=True)

    def status(self, status: str) -> str:
        colour = STATUS_COLOURS.get(status)
        return self.style(status, fg=colour) if colour else status

    def json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2, ensure_ascii=False))

    def note(self, text: str) -> None:
        """Progress and hints go to stderr so stdout stays clean for pipes."""
        click.echo(text, err=True, color=colour_enabled(sys.stderr))

    # -- layouts

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Labelled values, one per line, labels aligned."""
        width = max((len(label) for label, _ in pairs), default=0)
        for label, value in pairs:
            self.echo(f"{self.dim(label.ljust(width))}  {value}")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Columns sized to their widest cell; styled cells are measured without their codes."""
        widths = [len(h) for h in headers]
        for row in rows:
            for index, cell in enumerate(row):
                widths[index] = max(widths[index], visible_len(cell))
        self.echo(
            "  ".join(self.bold(h.ljust(w)) for h, w in zip(headers, widths, strict=True)).rstrip()
        )
        for row in rows:
            cells = [
                cell + " " * (width - visible_len(cell))
                for cell, width in zip(row, widths, strict=True)
            ]
            self.echo("  ".join(cells).rstrip())


def visible_len(text: str) -> int:
    return len(click.unstyle(text))


# -- value formatting


def when(ts: float | None) -> str:
    """A local timestamp to the second; '-' when there is none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def clock(ts: float | None) -> str:
    """Time of day only, for tables where the date adds noise."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().strftime("%H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return "<1ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def relative(ts: float | None, now: float) -> str:
    """'in 45s' or '3m 10s ago'."""
    if ts is None:
        return "-"
    delta = ts - now
    return f"in {duration(delta)}" if delta >= 0 else f"{duration(-delta)} ago"


def compact(value: Any, *, limit: int | None = 60) -> str:
    """A value as one line of JSON, cut to ``limit`` characters unless ``limit`` is None."""
    if value is None:
        return "-"
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text
