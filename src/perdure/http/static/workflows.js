// The front page: every workflow with its instance counts and a chart of the last 24 hours.

import { trigger } from "./actions.js";
import { api, enc, link } from "./api.js";
import { activityChart } from "./chart.js";
import { STATUSES, h, poll, replace, statusBadge } from "./dom.js";

export function countChips(counts) {
  const present = STATUSES.filter((status) => counts[status]);
  if (!present.length) return h("span", { class: "muted" }, "no instances");
  return h(
    "span",
    { class: "chips" },
    present.map((status) => h("span", { class: "chip" }, statusBadge(status), h("b", null, String(counts[status])))),
  );
}

function row(wf, chart) {
  const total = Object.values(wf.instances || {}).reduce((a, b) => a + b, 0);
  return h(
    "tr",
    { data: { workflow: wf.name } },
    h("td", null, h("a", { class: "wf-link", href: link({ workflow: wf.name }) }, wf.name), h("div", { class: "sub" }, wf.class_name)),
    h("td", { class: "num" }, String(total)),
    h("td", null, countChips(wf.instances || {})),
    h("td", { class: "chart-cell" }, chart),
    h("td", { class: "mono" }, wf.version),
    h(
      "td",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "small",
          on: {
            click: async () => {
              const created = await trigger(wf.name);
              if (created) location.assign(link({ workflow: wf.name, instance: created.id }));
            },
          },
        },
        "Trigger…",
      ),
    ),
  );
}

export function render(main) {
  document.title = "Workflows · perdure";
  const body = h("tbody");
  const table = h(
    "table",
    { class: "list", id: "workflows" },
    h(
      "thead",
      null,
      h("tr", null, ["Workflow", "Instances", "By status", "Last 24 h (started / failed)", "Version", ""].map((t) => h("th", null, t))),
    ),
    body,
  );
  const NONE = "No workflows are registered yet. Start a worker for your App, or run `perdure deploy`.";
  const empty = h("p", { class: "empty", hidden: true }, NONE);
  replace(main, h("div", { class: "page-head" }, h("h1", null, "Workflows")), table, empty);

  // Counts refresh every 5 s; the charts, which scan a day of instances, once a minute.
  const charts = new Map();
  const chart = async (name) => {
    const cached = charts.get(name);
    if (cached && Date.now() - cached.at < 60_000) return cached.node;
    const node = await api("GET", `/workflows/${enc(name)}/activity?hours=24&buckets=24`)
      .then((data) => activityChart(data.result))
      .catch(() => h("span", { class: "muted" }, "—"));
    charts.set(name, { at: Date.now(), node });
    return node;
  };
  const refresh = async () => {
    const { result } = await api("GET", "/workflows");
    const nodes = await Promise.all(result.map((wf) => chart(wf.name)));
    replace(body, result.map((wf, i) => row(wf, nodes[i])));
    replace(empty, NONE);
    empty.hidden = result.length > 0;
    table.hidden = result.length === 0;
  };
  return poll(
    () =>
      refresh().catch((err) => {
        replace(empty, `Cannot load the workflows: ${err.message}`);
        empty.hidden = false;
      }),
    5000,
  );
}
