// The timeline of one instance: a row per step on a shared time axis. Attempts of a step are
// separate segments (red when they failed), retry delays are dashed gaps, sleeps and event waits
// are spans up to their wake-up time. Clicking a row opens its details.

import { TERMINAL, errorView, fmtDuration, fmtTime, h, isOpen, jsonView, setOpen, ts } from "./dom.js";

const KIND = { do: "step", sleep: "sleep", wait: "event" };
const MIN_WIDTH = 0.4; // percent, so that a 1 ms attempt is still visible
const MAX_ROWS = 400;
const HEAD_ROWS = 100;

export function stepKey(step) {
  return `${step.type}:${step.count}:${step.name}`;
}

// The axis runs from creation to the last thing that happened, plus a short look ahead. A
// wake-up far in the future (a two-day event timeout) would otherwise squeeze everything
// that already happened into a sliver: such spans run off the right edge instead.
function bounds(inst, now) {
  const done = TERMINAL.has(inst.status);
  const t0 = ts(inst.created) ?? now;
  let past = done ? ts(inst.ended) ?? t0 : now;
  let future = past;
  for (const step of inst.steps) {
    for (const t of [ts(step.start), ts(step.end)]) if (t !== null) past = Math.max(past, t);
    for (const a of step.attempts) if (a.end) past = Math.max(past, ts(a.end));
    const wake = ts(step.wake_at);
    if (wake !== null) future = Math.max(future, wake);
  }
  past = Math.max(past, t0 + 0.001);
  const horizon = past + Math.max((past - t0) * 0.5, 1);
  const t1 = Math.max(past, Math.min(future, horizon));
  return { t0, t1, span: t1 - t0, done };
}

function segments(step, axis, now) {
  const pos = (t) => ((t - axis.t0) / axis.span) * 100;
  const seg = (from, to, cls, title, label) => {
    const left = Math.min(Math.max(pos(from), 0), 100 - MIN_WIDTH);
    const width = Math.min(Math.max(pos(to) - left, MIN_WIDTH), 100 - left);
    const clipped = to > axis.t1 + 1e-6 ? "clipped" : null;
    return h(
      "div",
      { class: ["seg", ...cls, clipped], style: { left: `${left}%`, width: `${width}%` }, title },
      label ? h("span", { class: "seg-label" }, label) : null,
    );
  };
  const out = [];
  const start = ts(step.start);
  if (start === null) return out;
  if (step.type === "do") {
    let previousEnd = null;
    for (const a of step.attempts) {
      const aStart = ts(a.start) ?? start;
      const aEnd = ts(a.end) ?? (axis.done ? ts(step.end) ?? aStart : now);
      if (previousEnd !== null && aStart > previousEnd) {
        out.push(seg(previousEnd, aStart, ["seg-gap"], `retry delay: ${fmtDuration(aStart - previousEnd)}`));
      }
      const state = a.success === true ? "seg-ok" : a.success === false ? "seg-fail" : "seg-run";
      const error = a.error ? ` — ${a.error.name}: ${a.error.message}` : "";
      out.push(
        seg(aStart, aEnd, ["seg-attempt", state], `attempt ${a.attempt}: ${fmtDuration(aEnd - aStart)}${error}`),
      );
      previousEnd = aEnd;
    }
    const wake = ts(step.wake_at);
    if (step.status === "retrying" && wake !== null && previousEnd !== null) {
      out.push(seg(previousEnd, wake, ["seg-gap", "pending"], `next attempt at ${fmtTime(step.wake_at)}`));
    }
    if (!step.attempts.length) {
      out.push(seg(start, ts(step.end) ?? now, [step.error ? "seg-fail" : "seg-ok"], step.status));
    }
    return out;
  }
  const end = ts(step.end);
  const wake = ts(step.wake_at);
  const until = end ?? wake ?? now;
  const cls = [step.type === "sleep" ? "seg-sleep" : "seg-wait"];
  if (end === null) cls.push("pending");
  if (step.status === "failure") cls.push("seg-fail");
  const title =
    step.type === "sleep"
      ? end !== null ? `slept ${fmtDuration(end - start)}` : `sleeping until ${fmtTime(step.wake_at)}`
      : end !== null
        ? `waited ${fmtDuration(end - start)}`
        : `waiting for the event${wake !== null ? `, timeout at ${fmtTime(step.wake_at)}` : ""}`;
  const label = end === null && wake !== null ? `wakes ${fmtTime(step.wake_at)}` : null;
  out.push(seg(start, until, cls, title, label));
  return out;
}

function config(step) {
  const c = step.config || {};
  const parts = [];
  if (c.retries) parts.push(`retries: ${c.retries.limit} × ${fmtDuration(c.retries.delay)} ${c.retries.backoff || ""}`);
  if (c.timeout) parts.push(`timeout: ${fmtDuration(c.timeout)}`);
  return parts.join(", ") || "—";
}

function attemptsTable(step, key) {
  if (!step.attempts.length) return null;
  return h(
    "table",
    { class: "attempts" },
    h("thead", null, h("tr", null, ["#", "Started", "Duration", "Result", "Error"].map((t) => h("th", null, t)))),
    h(
      "tbody",
      null,
      step.attempts.map((a) =>
        h(
          "tr",
          { class: a.success === false ? "failed" : null },
          h("td", null, String(a.attempt)),
          h("td", null, fmtTime(a.start)),
          h("td", null, fmtDuration(a.duration)),
          h("td", null, a.success === true ? "ok" : a.success === false ? "failed" : "running"),
          h("td", null, a.error ? errorView(a.error, `tb:${key}:${a.attempt}`) : "—"),
        ),
      ),
    ),
  );
}

function detail(step, key, onRestartFrom) {
  const wakeLabel = step.type === "do" ? "Retries at" : step.type === "sleep" ? "Wakes at" : "Times out at";
  const rows = [
    ["Type", KIND[step.type] || step.type],
    ["Status", step.status],
    ["Started", fmtTime(step.start)],
    ["Ended", fmtTime(step.end)],
    ["Duration", fmtDuration(step.duration)],
  ];
  if (step.wake_at) rows.push([wakeLabel, fmtTime(step.wake_at)]);
  if (step.type === "do") rows.push(["Config", config(step)]);
  return h(
    "div",
    { class: "tl-detail", data: { detail: key } },
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
    step.error ? h("div", { class: "detail-block" }, h("h4", null, "Error"), errorView(step.error, `tb:${key}`)) : null,
    attemptsTable(step, key) ? h("div", { class: "detail-block" }, h("h4", null, "Attempts"), attemptsTable(step, key)) : null,
    step.output !== null && step.output !== undefined
      ? h("div", { class: "detail-block" }, h("h4", null, "Output"), jsonView(step.output, `out:${key}`))
      : null,
    onRestartFrom
      ? h(
          "div",
          { class: "detail-actions" },
          h("button", { type: "button", class: "ghost", on: { click: () => onRestartFrom(step) } }, "Restart from this step"),
        )
      : null,
  );
}

function axisRow(axis, now) {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h(
      "span",
      { class: ["tick", f === 1 ? "tick-end" : null], style: { left: `${f * 100}%` } },
      f === 0 ? fmtTime(new Date(axis.t0 * 1000).toISOString()) : `+${fmtDuration(axis.span * f)}`,
    ),
  );
  const marker = axis.done
    ? null
    : h("span", { class: "now", style: { left: `${((now - axis.t0) / axis.span) * 100}%` }, title: "now" });
  return h("div", { class: "tl-row tl-axis" }, h("div", { class: "tl-label" }), h("div", { class: "tl-track" }, ticks, marker));
}

export function timeline(inst, { onRestartFrom } = {}) {
  const now = Date.now() / 1000;
  if (!inst.steps.length) {
    return h("p", { class: "muted empty" }, TERMINAL.has(inst.status) ? "No steps ran." : "No step has started yet.");
  }
  const axis = bounds(inst, now);
  // Thousands of rows redrawn every second would freeze the page: keep the first and the
  // latest steps, and say how many are left out.
  let steps = inst.steps;
  let hidden = 0;
  if (steps.length > MAX_ROWS) {
    hidden = steps.length - MAX_ROWS;
    steps = [...steps.slice(0, HEAD_ROWS), null, ...steps.slice(steps.length - (MAX_ROWS - HEAD_ROWS))];
  }
  const rows = steps.map((step) => {
    if (step === null) {
      return h("div", { class: "tl-row tl-gap" }, h("div", { class: "tl-label muted" }, `… ${hidden} more steps …`), h("div"));
    }
    const key = stepKey(step);
    const open = isOpen(`step:${key}`);
    const info = detail(step, key, onRestartFrom);
    info.hidden = !open;
    const row = h(
      "div",
      {
        class: ["tl-row", "tl-step", `kind-${step.type}`, `step-${step.status}`],
        role: "button",
        tabindex: "0",
        "aria-expanded": String(open),
        data: { step: step.name, kind: step.type },
      },
      h(
        "div",
        { class: "tl-label" },
        h("span", { class: ["kind", `kind-${step.type}`] }, KIND[step.type] || step.type),
        h("span", { class: "step-name" }, step.name),
        step.count > 1 ? h("span", { class: "count" }, `#${step.count}`) : null,
        step.attempts.length > 1 ? h("span", { class: "retries" }, `${step.attempts.length} attempts`) : null,
      ),
      h("div", { class: "tl-track" }, segments(step, axis, now)),
    );
    const toggle = () => {
      const next = info.hidden;
      info.hidden = !next;
      row.setAttribute("aria-expanded", String(next));
      setOpen(`step:${key}`, next);
    };
    row.addEventListener("click", toggle);
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggle();
      }
    });
    return [row, info];
  });
  return h(
    "div",
    { class: "timeline" },
    h(
      "div",
      { class: "legend" },
      [
        ["seg-ok", "succeeded"],
        ["seg-fail", "failed"],
        ["seg-run", "running"],
        ["seg-gap", "retry delay"],
        ["seg-sleep", "sleep"],
        ["seg-wait", "waiting for event"],
      ].map(([cls, text]) => h("span", { class: "legend-item" }, h("span", { class: ["swatch", cls] }), text)),
    ),
    axisRow(axis, now),
    rows,
  );
}
