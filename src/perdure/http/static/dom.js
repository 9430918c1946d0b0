// DOM helpers. Every piece of data goes in as a text node or a property, never as HTML:
// there is no innerHTML anywhere in the dashboard.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
  return parent;
}

// Links only ever point inside the dashboard: "?workflow=..." or "/...".
function safeHref(value) {
  const text = String(value);
  return text.startsWith("?") || text.startsWith("/") || text.startsWith("#") ? text : "#";
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key === "style") for (const [k, v] of Object.entries(value)) el.style[k] = v;
    else if (key === "href") el.setAttribute("href", safeHref(value));
    else if (key === "text") el.textContent = String(value);
    else if (/^on/i.test(key) || key === "srcdoc") throw new Error(`refusing attribute ${key}`);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, children);
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") el.setAttribute("class", value);
    else el.setAttribute(key, String(value));
  }
  return append(el, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// -- formatting

export const STATUSES = [
  "queued", "running", "paused", "errored", "terminated", "complete", "waiting", "waitingForPause",
];
export const TERMINAL = new Set(["complete", "errored", "terminated"]);

export function statusBadge(status) {
  const known = STATUSES.includes(status) ? status : "unknown";
  return h("span", { class: ["badge", `st-${known}`], data: { status: known } }, status || "unknown");
}

export function ts(iso) {
  return iso ? Date.parse(iso) / 1000 : null;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const now = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const sign = seconds < 0 ? "-" : "";
  const abs = Math.abs(seconds);
  if (abs < 1) return `${sign}${Math.round(abs * 1000)} ms`;
  if (abs < 60) return `${sign}${abs.toFixed(abs < 10 ? 2 : 1)} s`;
  // Round to the smaller unit first, so 47.99 hours reads "2 d 0 h", not "1 d 24 h".
  const pair = (unit, sub, a, b) => {
    const total = Math.round(abs / sub);
    const per = unit / sub;
    return `${sign}${Math.floor(total / per)} ${a} ${total % per} ${b}`;
  };
  if (abs < 3600) return pair(60, 1, "min", "s");
  if (abs < 86400) return pair(3600, 60, "h", "min");
  return pair(86400, 3600, "d", "h");
}

export function fmtRelative(iso) {
  if (!iso) return "";
  const delta = ts(iso) - Date.now() / 1000;
  return delta >= 0 ? `in ${fmtDuration(delta)}` : `${fmtDuration(-delta)} ago`;
}

// -- JSON, folded: a one-line preview that opens into pretty-printed text.

const openKeys = new Set();

export function rememberOpen(el, key) {
  if (!key) return el;
  el.dataset.key = key;
  if (openKeys.has(key)) el.open = true;
  el.addEventListener("toggle", () => {
    if (el.open) openKeys.add(key);
    else openKeys.delete(key);
  });
  return el;
}

export function isOpen(key) {
  return openKeys.has(key);
}

export function setOpen(key, open) {
  if (open) openKeys.add(key);
  else openKeys.delete(key);
}

export function jsonView(value, key) {
  if (value === undefined) return h("span", { class: "muted" }, "—");
  const compact = JSON.stringify(value);
  if (value === null || (typeof value !== "object" && compact.length <= 80)) {
    return h("code", { class: "json-inline" }, compact);
  }
  const preview = compact.length > 90 ? `${compact.slice(0, 90)}…` : compact;
  const details = h(
    "details",
    { class: "json" },
    h("summary", null, h("code", null, preview)),
    h("pre", { class: "json-pretty" }, JSON.stringify(value, null, 2)),
  );
  return rememberOpen(details, key);
}

export function errorView(error, key) {
  if (!error) return null;
  return h(
    "div",
    { class: "error-box" },
    h("strong", { class: "error-name" }, error.name || "Error"),
    ": ",
    h("span", { class: "error-message" }, error.message || ""),
    error.traceback
      ? rememberOpen(
          h("details", { class: "traceback" }, h("summary", null, "Traceback"), h("pre", null, error.traceback)),
          key,
        )
      : null,
  );
}

// -- feedback

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: ["toast", `toast-${kind}`] }, message);
  box.appendChild(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

// A modal form instead of window.confirm/prompt: it can hold fields, validate JSON in place,
// and a page under test never raises a browser dialog.
export function ask({ title, text = "", fields = [], ok = "Confirm", danger = false }) {
  const dialog = document.getElementById("ask");
  const form = document.getElementById("ask-form");
  const error = document.getElementById("ask-error");
  const okButton = document.getElementById("ask-ok");
  replace(document.getElementById("ask-title"), title);
  replace(document.getElementById("ask-text"), text);
  replace(error);
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "";
  const inputs = fields.map((field) => {
    const id = `ask-${field.name}`;
    const input = field.kind === "json"
      ? h("textarea", { id, name: field.name, rows: 5, spellcheck: "false", placeholder: field.placeholder || "" })
      : h("input", { id, name: field.name, type: "text", autocomplete: "off", placeholder: field.placeholder || "" });
    input.value = field.value ?? "";
    return { field, input, row: h("div", { class: "field" }, h("label", { for: id }, field.label), input) };
  });
  replace(document.getElementById("ask-fields"), inputs.map((i) => i.row));
  return new Promise((resolve) => {
    const finish = (result) => {
      form.removeEventListener("submit", onSubmit);
      document.getElementById("ask-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      resolve(result);
    };
    const onCancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const values = {};
      for (const { field, input } of inputs) {
        const raw = input.value.trim();
        if (field.kind === "json") {
          if (!raw) {
            values[field.name] = undefined;
            continue;
          }
          try {
            values[field.name] = JSON.parse(raw);
          } catch (err) {
            replace(error, `${field.label} is not valid JSON: ${err.message}`);
            input.focus();
            return;
          }
        } else if (field.required && !raw) {
          replace(error, `${field.label} is required.`);
          input.focus();
          return;
        } else {
          values[field.name] = raw || undefined;
        }
      }
      finish(values);
    };
    form.addEventListener("submit", onSubmit);
    document.getElementById("ask-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    (inputs[0]?.input || okButton).focus();
  });
}

// Run fn now and then every `ms` while the page is visible; returns a stop function.
export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await fn();
      } catch (err) {
        console.warn("refresh failed", err);
      }
    }
    if (!stopped) timer = setTimeout(tick, typeof ms === "function" ? ms() : ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
