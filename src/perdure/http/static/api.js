// The JSON API, seen from the dashboard: same origin, session cookie, CSRF header.

function meta(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.getAttribute("content") : "";
}

export const base = meta("perdure-base");
const csrf = meta("perdure-csrf");
export const authMode = meta("perdure-auth");

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = new Set();
export function onConnection(fn) {
  listeners.add(fn);
}
function report(ok) {
  for (const fn of listeners) fn(ok);
}

export function loginUrl() {
  const next = location.pathname.slice(base.length) + location.search;
  return `${base}/_perdure/login?next=${encodeURIComponent(next || "/")}`;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET") headers["X-Perdure-CSRF"] = csrf;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${base}/api${path}`, init);
  } catch (err) {
    report(false);
    throw new ApiError(0, "offline", "cannot reach the server");
  }
  report(true);
  if (response.status === 401 && authMode === "session") {
    location.assign(loginUrl());
    throw new ApiError(401, "unauthorized", "your session has ended; log in again");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    throw new ApiError(response.status, "bad_response", `unexpected ${response.status} response`);
  }
  if (!response.ok || !data.success) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || "error", error.message || `HTTP ${response.status}`);
  }
  return data;
}

export const enc = encodeURIComponent;

export function instancePath(workflow, id) {
  return `/workflows/${enc(workflow)}/instances/${enc(id)}`;
}

export async function logout() {
  await fetch(`${base}/_perdure/logout`, {
    method: "POST",
    headers: { "X-Perdure-CSRF": csrf },
    credentials: "same-origin",
  });
  location.assign(`${base}/_perdure/login`);
}

// Links inside the dashboard, as query strings on its one page.
export function link(params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) query.set(key, value);
  const text = query.toString();
  return text ? `?${text}` : `${base}/`;
}
