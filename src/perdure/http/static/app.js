// Entry point: picks the page from the query string (?workflow=...&instance=...).

import { authMode, link, logout, onConnection } from "./api.js";
import { h, replace } from "./dom.js";
import * as instancePage from "./instance.js";
import * as instancesPage from "./instances.js";
import * as workflowsPage from "./workflows.js";

function crumbs(workflow, instance) {
  const parts = [h("a", { href: link({}) }, "Workflows")];
  if (workflow) parts.push(h("span", { class: "sep" }, "/"), h("a", { href: link({ workflow }) }, workflow));
  if (instance) parts.push(h("span", { class: "sep" }, "/"), h("span", { class: "mono" }, instance));
  return parts;
}

function start() {
  const params = new URLSearchParams(location.search);
  const workflow = params.get("workflow");
  const instance = params.get("instance");
  replace(document.getElementById("crumbs"), crumbs(workflow, instance));

  const conn = document.getElementById("conn");
  onConnection((ok) => {
    conn.className = ok ? "conn conn-ok" : "conn conn-down";
    conn.textContent = ok ? "live" : "offline";
  });

  const out = document.getElementById("logout");
  if (authMode === "session") {
    out.hidden = false;
    out.addEventListener("click", () => logout());
  }

  const main = document.getElementById("main");
  if (workflow && instance) instancePage.render(main, { workflow, instance });
  else if (workflow) instancesPage.render(main, { workflow });
  else workflowsPage.render(main);
}

start();
