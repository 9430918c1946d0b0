// Actions on instances, each confirmed in a modal and reported in a toast.

import { api, enc, instancePath } from "./api.js";
import { ask, toast } from "./dom.js";

async function run(label, fn) {
  try {
    const result = await fn();
    return result;
  } catch (err) {
    toast(`${label} failed: ${err.message}`, "error");
    return null;
  }
}

export async function trigger(workflow) {
  const values = await ask({
    title: `Trigger ${workflow}`,
    text: "Queue a new instance. Leave the id empty for a random one.",
    fields: [
      { name: "id", label: "Instance id (optional)", placeholder: "e.g. order-1234" },
      { name: "params", label: "Params (JSON)", kind: "json", value: "{}" },
    ],
    ok: "Trigger",
  });
  if (!values) return null;
  const body = { params: values.params === undefined ? {} : values.params };
  if (values.id) body.id = values.id;
  const data = await run("Trigger", () => api("POST", `/workflows/${enc(workflow)}/instances`, body));
  if (data) toast(`Instance ${data.result.id} queued`);
  return data ? data.result : null;
}

const VERBS = {
  pause: { title: "Pause", text: "Running steps finish first; sleeps and waits stop until resumed." },
  resume: { title: "Resume", text: "The instance carries on; a sleep keeps only the time it had left." },
  terminate: { title: "Terminate", text: "Stop this instance for good. This cannot be undone.", danger: true },
  restart: { title: "Restart", text: "Run it again with the same id and params; its history is erased.", danger: true },
};

export async function changeStatus(workflow, id, action, from) {
  const verb = VERBS[action];
  const text = from
    ? `Run step “${from.name}”${from.count > 1 ? ` #${from.count}` : ""} and every later step again; earlier results are kept.`
    : verb.text;
  const values = await ask({ title: `${verb.title} instance ${id}?`, text, ok: verb.title, danger: verb.danger });
  if (!values) return null;
  const body = { status: action };
  if (from) body.from = from;
  const data = await run(verb.title, () => api("PATCH", `${instancePath(workflow, id)}/status`, body));
  if (data) toast(`${verb.title}: instance is now ${data.result.status}`);
  return data ? data.result : null;
}

export async function sendEvent(workflow, id) {
  const values = await ask({
    title: `Send an event to ${id}`,
    text: "A wait_for_event step of this type receives it; it is kept until one does.",
    fields: [
      { name: "type", label: "Event type", required: true, placeholder: "e.g. approval" },
      { name: "payload", label: "Payload (JSON)", kind: "json", value: "{}" },
    ],
    ok: "Send",
  });
  if (!values) return null;
  const data = await run("Send event", () =>
    api("POST", `${instancePath(workflow, id)}/events/${enc(values.type)}`, values.payload ?? null),
  );
  if (data) toast(`Sent event “${data.result.type}”`);
  return data ? data.result : null;
}
