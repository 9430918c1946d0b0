// The instances of one workflow: newest first, filtered by status, found by id, paged by cursor,
// refreshed live.

import { trigger } from "./actions.js";
import { ApiError, api, enc, instancePath, link } from "./api.js";
import { STATUSES, TERMINAL, fmtDuration, fmtRelative, fmtTime, h, poll, replace, statusBadge, ts } from "./dom.js";
import { countChips } from "./workflows.js";

const PAGE_SIZE = 25;

function duration(inst) {
  const start = ts(inst.started);
  if (start === null) return "—";
  const end = ts(inst.ended) ?? (TERMINAL.has(inst.status) ? null : Date.now() / 1000);
  return end === null ? "—" : fmtDuration(end - start);
}

function row(workflow, inst, fresh) {
  return h(
    "tr",
    { class: inst.id === fresh ? "fresh" : null, data: { instance: inst.id, status: inst.status } },
    h("td", { class: "mono" }, h("a", { class: "instance-link", href: link({ workflow, instance: inst.id }) }, inst.id)),
    h("td", null, statusBadge(inst.status), inst.wake_at ? h("span", { class: "sub" }, ` wakes ${fmtRelative(inst.wake_at)}`) : null),
    h("td", null, fmtTime(inst.created)),
    h("td", null, fmtTime(inst.started)),
    h("td", null, duration(inst)),
    h("td", { class: "mono" }, inst.version),
  );
}

export function render(main, { workflow }) {
  document.title = `${workflow} · perdure`;
  const params = new URLSearchParams(location.search);
  const state = {
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "",
    search: params.get("q") || "",
    cursors: [null], // cursor of each page seen; the last one is the page shown
    next: null,
    fresh: null,
  };

  const counts = h("div", { class: "counts" });
  const statusSelect = h(
    "select",
    { id: "status-filter", "aria-label": "status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((st) => h("option", { value: st }, st)),
  );
  statusSelect.value = state.status;
  const searchInput = h("input", { id: "search", type: "search", placeholder: "Find an instance by id", autocomplete: "off" });
  searchInput.value = state.search;
  const live = h("input", { id: "live", type: "checkbox", checked: true });
  const body = h("tbody");
  const note = h("p", { class: "empty", hidden: true });
  const newer = h("button", { type: "button", class: "ghost", id: "newer" }, "← Newer");
  const older = h("button", { type: "button", class: "ghost", id: "older" }, "Older →");
  const pageLabel = h("span", { class: "muted" });

  const saveUrl = () => {
    const query = new URLSearchParams({ workflow });
    if (state.status) query.set("status", state.status);
    if (state.search) query.set("q", state.search);
    history.replaceState(null, "", `?${query}`);
  };

  const showRows = (rows) => {
    replace(body, rows.map((inst) => row(workflow, inst, state.fresh)));
    note.hidden = rows.length > 0;
  };

  const load = async () => {
    const wf = await api("GET", `/workflows/${enc(workflow)}`);
    replace(counts, countChips(wf.result.instances || {}));
    if (state.search) {
      try {
        const found = await api("GET", instancePath(workflow, state.search));
        showRows([found.result]);
      } catch (err) {
        if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 422)) throw err;
        showRows([]);
        replace(note, `No instance with id “${state.search}” in ${workflow}.`);
      }
      newer.disabled = true;
      older.disabled = true;
      replace(pageLabel, "search result");
      return;
    }
    const cursor = state.cursors[state.cursors.length - 1];
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.status) query.set("status", state.status);
    if (cursor) query.set("cursor", cursor);
    const data = await api("GET", `/workflows/${enc(workflow)}/instances?${query}`);
    state.next = data.result_info.cursor;
    showRows(data.result);
    if (!data.result.length) {
      replace(note, state.status ? `No ${state.status} instances.` : "No instances yet. Trigger one above.");
    }
    newer.disabled = state.cursors.length === 1;
    older.disabled = !state.next;
    replace(pageLabel, `page ${state.cursors.length}`);
  };

  const failed = (err) => {
    showRows([]);
    replace(note, err.message);
    note.hidden = false;
  };
  const reload = () => load().catch(failed);

  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    state.cursors = [null];
    saveUrl();
    reload();
  });
  const searchForm = h(
    "form",
    { class: "search", role: "search" },
    searchInput,
    h("button", { type: "submit", class: "ghost" }, "Find"),
  );
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    state.search = searchInput.value.trim();
    state.cursors = [null];
    saveUrl();
    reload();
  });
  searchInput.addEventListener("search", () => {
    if (!searchInput.value) {
      state.search = "";
      saveUrl();
      reload();
    }
  });
  newer.addEventListener("click", () => {
    if (state.cursors.length > 1) state.cursors.pop();
    reload();
  });
  older.addEventListener("click", () => {
    if (state.next) state.cursors.push(state.next);
    reload();
  });
  const triggerButton = h(
    "button",
    {
      type: "button",
      id: "trigger",
      on: {
        click: async () => {
          const created = await trigger(workflow);
          if (!created) return;
          state.fresh = created.id;
          state.search = "";
          searchInput.value = "";
          state.cursors = [null];
          saveUrl();
          await reload();
        },
      },
    },
    "Trigger instance…",
  );

  replace(
    main,
    h("div", { class: "page-head" }, h("h1", null, workflow), counts, h("span", { class: "spacer" }), triggerButton),
    h(
      "div",
      { class: "toolbar" },
      statusSelect,
      searchForm,
      h("span", { class: "spacer" }),
      h("label", { class: "live" }, live, " Live"),
    ),
    h(
      "table",
      { class: "list", id: "instances" },
      h("thead", null, h("tr", null, ["Instance", "Status", "Created", "Started", "Duration", "Version"].map((t) => h("th", null, t)))),
      body,
    ),
    note,
    h("div", { class: "pager" }, newer, pageLabel, older),
  );

  return poll(async () => {
    if (live.checked || !body.firstChild) await reload();
  }, 2000);
}
