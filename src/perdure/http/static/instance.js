// One instance: its header, actions, timeline and events, refreshed live while it runs.

import { changeStatus, sendEvent } from "./actions.js";
import { ApiError, api, instancePath, link } from "./api.js";
import {
  TERMINAL,
  errorView,
  fmtDuration,
  fmtRelative,
  fmtTime,
  h,
  jsonView,
  poll,
  replace,
  statusBadge,
  ts,
} from "./dom.js";
import { timeline } from "./timeline.js";

const CAN = {
  pause: new Set(["queued", "running", "waiting"]),
  resume: new Set(["paused", "waitingForPause"]),
  terminate: new Set(["queued", "running", "paused", "waiting", "waitingForPause", "unknown"]),
  event: new Set(["queued", "running", "paused", "waiting", "waitingForPause"]),
};

function facts(inst) {
  const now = Date.now() / 1000;
  const start = ts(inst.started);
  const end = ts(inst.ended) ?? (TERMINAL.has(inst.status) ? null : now);
  const rows = [
    ["Workflow", h("a", { href: link({ workflow: inst.workflow }) }, inst.workflow)],
    ["Version", h("code", null, inst.version)],
    ["Created", fmtTime(inst.created)],
    ["Started", fmtTime(inst.started)],
    ["Ended", fmtTime(inst.ended)],
    ["Duration", start !== null && end !== null ? fmtDuration(end - start) : "—"],
    ["Steps", String(inst.step_count)],
  ];
  if (inst.wake_at) rows.push(["Wakes", `${fmtTime(inst.wake_at)} (${fmtRelative(inst.wake_at)})`]);
  return h("dl", { class: "facts", id: "facts" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function eventsTable(inst) {
  if (!inst.events.length) return h("p", { class: "muted empty" }, "No events received.");
  return h(
    "table",
    { class: "list", id: "events" },
    h("thead", null, h("tr", null, ["Type", "Payload", "Received", "Taken by"].map((t) => h("th", null, t)))),
    h(
      "tbody",
      null,
      inst.events.map((e, i) =>
        h(
          "tr",
          null,
          h("td", { class: "mono event-type" }, e.type),
          h("td", { class: "event-payload" }, jsonView(e.payload, `event:${i}`)),
          h("td", null, fmtTime(e.received_at)),
          h("td", { class: "mono" }, e.consumed_by || h("span", { class: "muted" }, "not yet")),
        ),
      ),
    ),
  );
}

export function render(main, { workflow, instance }) {
  document.title = `${instance} · ${workflow} · perdure`;
  let current = null;
  let lastText = "";

  const refreshSoon = () => load().catch(showError);

  const act = async (action, from) => {
    const result = await changeStatus(workflow, current.id, action, from);
    if (result) await refreshSoon();
  };

  const actions = (inst) => {
    const button = (label, id, enabled, onClick, cls) =>
      h("button", { type: "button", id, class: cls, disabled: !enabled, on: { click: onClick } }, label);
    return h(
      "div",
      { class: "actions-bar", id: "actions" },
      button("Pause", "act-pause", CAN.pause.has(inst.status), () => act("pause")),
      button("Resume", "act-resume", CAN.resume.has(inst.status), () => act("resume")),
      button("Send event…", "act-event", CAN.event.has(inst.status), async () => {
        if (await sendEvent(workflow, inst.id)) await refreshSoon();
      }),
      button("Restart", "act-restart", true, () => act("restart"), "danger-ghost"),
      button("Terminate", "act-terminate", CAN.terminate.has(inst.status), () => act("terminate"), "danger"),
    );
  };

  const restartFrom = (step) =>
    act("restart", { name: step.name, count: step.count, type: step.type === "wait" ? "waitForEvent" : step.type });

  const view = (inst) =>
    h(
      "div",
      { class: "instance", data: { status: inst.status } },
      h(
        "div",
        { class: "page-head" },
        h("h1", { class: "mono", id: "instance-id" }, inst.id),
        h("span", { id: "instance-status" }, statusBadge(inst.status)),
        h("span", { class: "spacer" }),
        actions(inst),
      ),
      facts(inst),
      inst.error
        ? h("section", { class: "card error-card", id: "instance-error" }, h("h2", null, "Error"), errorView(inst.error, "tb:instance"))
        : null,
      h(
        "div",
        { class: "io" },
        h("section", { class: "card", id: "params" }, h("h2", null, "Params"), jsonView(inst.params, "params")),
        h("section", { class: "card", id: "output" }, h("h2", null, "Output"), jsonView(inst.output, "output")),
      ),
      h("section", { class: "card", id: "timeline" }, h("h2", null, "Timeline"), timeline(inst, { onRestartFrom: restartFrom })),
      h("section", { class: "card" }, h("h2", null, "Events"), eventsTable(inst)),
    );

  const showError = (err) => {
    if (err instanceof ApiError && err.status === 404) {
      replace(
        main,
        h("h1", null, "Not found"),
        h("p", null, err.message),
        h("p", null, h("a", { href: link({ workflow }) }, `Back to ${workflow}`)),
      );
      return;
    }
    throw err;
  };

  const load = async () => {
    const data = await api("GET", instancePath(workflow, instance));
    const text = JSON.stringify(data.result);
    // A finished instance only changes through an action; skip redrawing identical data.
    if (text === lastText && TERMINAL.has(data.result.status)) return;
    lastText = text;
    current = data.result;
    const scroll = window.scrollY;
    replace(main, view(current));
    window.scrollTo(0, scroll);
  };

  replace(main, h("p", { class: "muted" }, "Loading…"));
  return poll(() => load().catch(showError), () => (current && TERMINAL.has(current.status) ? 5000 : 1000));
}
