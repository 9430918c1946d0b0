"""Human views of workflows and instances: the header, the steps table, attempts, progress."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence

from ..client.models import InstanceDetails, InstanceSummary, StepInfo, WorkflowInfo
from .output import Printer, clock, compact, duration, relative, when

STEP_STATES = {
    # how a step's status reads in the table; a sleep that ended "success" woke up
    ("sleep", "success"): "done",
    ("wait", "success"): "received",
}


def counts_text(counts: dict[str, int], printer: Printer) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{n} {printer.status(s)}" for s, n in sorted(counts.items()))


def workflows_table(printer: Printer, workflows: Sequence[WorkflowInfo]) -> None:
    if not workflows:
        printer.echo("No workflows registered. Run `perdure deploy` to register them.")
        return
    printer.table(
        ["NAME", "CLASS", "BINDING", "VERSION", "INSTANCES", "CREATED", "MODIFIED"],
        [
            [
                w.name,
                w.class_path,
                w.binding,
                w.version,
                counts_text(w.counts, printer),
                when(w.created_at),
                when(w.modified_at),
            ]
            for w in workflows
        ],
    )


def workflow_view(printer: Printer, w: WorkflowInfo) -> None:
    printer.fields(
        [
            ("Name", printer.bold(w.name)),
            ("Class", w.class_path),
            ("Binding", w.binding),
            ("Version", w.version),
            (
                "Max concurrency",
                "no limit" if w.max_concurrency is None else str(w.max_concurrency),
            ),
            ("Created", when(w.created_at)),
            ("Modified", when(w.modified_at)),
            ("Instances", str(sum(w.counts.values()))),
        ]
    )
    if w.counts:
        printer.echo()
        printer.table(
            ["STATUS", "INSTANCES"],
            [[printer.status(s), str(n)] for s, n in sorted(w.counts.items())],
        )


def instances_table(printer: Printer, rows: Sequence[InstanceSummary]) -> None:
    now = time.time()
    printer.table(
        ["ID", "STATUS", "VERSION", "CREATED", "DURATION", "WAKES"],
        [
            [
                r.id,
                printer.status(r.status),
                r.version,
                when(r.created_at),
                duration(
                    None
                    if r.started_at is None
                    else (r.ended_at if r.ended_at is not None else now) - r.started_at
                ),
                relative(r.wake_at, now) if r.wake_at else "-",
            ]
            for r in rows
        ],
    )


def step_state(step: StepInfo, printer: Printer, *, now: float, limit: int | None) -> str:
    """The last column: the state returned, the error, or when a sleep or wait wakes up."""
    if step.error is not None and step.status == "failure":
        return printer.style(f"{step.error.name}: {step.error.message}", fg="red")
    if step.kind in ("sleep", "wait") and step.status in ("sleeping", "waiting", "running"):
        if step.wake_at is None:
            return "-"
        verb = "wakes" if step.kind == "sleep" else "times out"
        return f"{verb} {clock(step.wake_at)} ({relative(step.wake_at, now)})"
    if step.kind == "sleep":
        return f"woke {clock(step.end or step.wake_at)}"
    if step.status == "retrying" and step.wake_at is not None:
        return f"retries {clock(step.wake_at)} ({relative(step.wake_at, now)})"
    if step.status in ("running", "retrying"):
        return "-"
    return compact(step.output, limit=limit)


def steps_done(details: InstanceDetails) -> int:
    return sum(1 for s in details.steps if s.status in ("success", "failure"))


def instance_view(printer: Printer, d: InstanceDetails, *, full: bool = False) -> None:
    now = time.time()
    status = printer.bold(printer.status(d.status))
    header: list[tuple[str, str]] = [
        ("Workflow", d.workflow),
        ("Instance", printer.bold(d.id)),
        ("Status", status),
        ("Version", d.version),
        ("Created", when(d.created_at)),
        ("Start", when(d.started_at)),
        ("End", when(d.ended_at)),
        ("Duration", duration(d.duration)),
    ]
    if d.wake_at is not None:
        header.append(("Wakes", f"{when(d.wake_at)} ({relative(d.wake_at, now)})"))
    header.append(("Params", compact(d.params, limit=None if full else 200)))
    header.append(("Output", compact(d.output, limit=None if full else 200)))
    if d.error is not None:
        header.append(("Error", printer.style(f"{d.error.name}: {d.error.message}", fg="red")))
    printer.fields(header)
    if full and d.error is not None and d.error.traceback:
        printer.echo()
        printer.echo(printer.dim(d.error.traceback.rstrip()))

    printer.echo()
    printer.echo(printer.bold(f"Steps ({len(d.steps)}, {steps_done(d)} done)"))
    if not d.steps:
        printer.echo(printer.dim("  no step has run yet"))
    else:
        steps_table(printer, d.steps, full=full, now=now)
    if d.events:
        printer.echo()
        printer.echo(printer.bold(f"Events ({len(d.events)})"))
        printer.table(
            ["TYPE", "RECEIVED", "TAKEN BY", "PAYLOAD"],
            [
                [
                    e.type,
                    when(e.received_at),
                    e.consumed_by or "-",
                    compact(e.payload, limit=None if full else 60),
                ]
                for e in d.events
            ],
        )


def steps_table(printer: Printer, steps: Sequence[StepInfo], *, full: bool, now: float) -> None:
    headers = ["#", "NAME", "KIND", "STATUS", "ATTEMPTS", "START", "DURATION", "STATE"]
    rows: list[list[str]] = []
    # Fit the state column to the terminal, within reason; --full shows it all.
    limit: int | None = None
    if full:
        limit = None
    elif printer.colour:  # a terminal: fit its width
        used = 8 + max((len(s.name) for s in steps), default=4) + 50
        limit = max(30, shutil.get_terminal_size((120, 24)).columns - used)
    else:
        limit = 60
    for index, step in enumerate(steps, start=1):
        label = STEP_STATES.get((step.kind, step.status), step.status)
        rows.append(
            [
                str(index),
                step.name if step.count == 1 else f"{step.name} #{step.count}",
                step.kind,
                printer.status(step.status) if label == step.status else printer.status(label),
                str(len(step.attempts)) if step.kind == "do" else "-",
                clock(step.start),
                duration(None if step.start is None or step.end is None else step.end - step.start),
                step_state(step, printer, now=now, limit=limit),
            ]
        )
    printer.table(headers, rows)
    for index, step in enumerate(steps, start=1):
        failed = [a for a in step.attempts if a.error is not None]
        if not failed:
            continue
        printer.echo()
        printer.echo(printer.dim(f"Attempts of step {index} ({step.name}):"))
        printer.table(
            ["ATTEMPT", "START", "DURATION", "RESULT"],
            [
                [
                    str(a.attempt),
                    clock(a.start),
                    duration(None if a.start is None or a.end is None else a.end - a.start),
                    printer.style(f"{a.error.name}: {a.error.message}", fg="red")
                    if a.error is not None
                    else ("running" if a.end is None else printer.status("success")),
                ]
                for a in step.attempts
            ],
        )
        if full and step.error is not None and step.error.traceback:
            printer.echo(printer.dim(step.error.traceback.rstrip()))


def progress_line(printer: Printer, d: InstanceDetails, tick: int) -> str:
    """One line of progress for --watch: the status, steps done, and what runs now."""
    spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[tick % 10] if printer.colour else "-"
    done = steps_done(d)
    current = next((s for s in reversed(d.steps) if s.status not in ("success", "failure")), None)
    bar = "█" * min(done, 30) + ("▌" if current else "")
    parts = [f"{spinner} {printer.status(d.status)}", f"{bar} {done} step{'s' * (done != 1)} done"]
    if current is not None:
        parts.append(f"now: {current.name} ({current.status})")
    parts.append(duration(d.duration))
    return "  ".join(parts)
