// debug.js: /debug, development only: test sessions, a forced lobby, cleanup, and
// a live view of the system's state.

import { boot } from "./page.js";
import { debugEnabled, setDebug } from "./log.js";

const STATE_EVERY_MS = 2000;

const { i18n, log } = await boot();
const t = (key, vars) => i18n.t(key, vars);
const root = document.getElementById("debug");
root.className = "debug";

function element(tag, properties = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function field(id, label, input) {
  input.id = id;
  return [element("label", { htmlFor: id, textContent: label }), input];
}

async function call(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
  const answer = await response.json();
  if (!response.ok) {
    const detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
    throw new Error(detail);
  }
  return answer;
}

function section(titleKey, ...children) {
  const id = `debug-${titleKey.replace(/\W/g, "-")}`;
  const view = element("section", {}, element("h2", { id, textContent: t(titleKey) }), ...children);
  view.setAttribute("aria-labelledby", id);
  return view;
}

// Create a test session.
const startsIn = element("input", { type: "number", min: 0, step: 1, value: 2 });
const duration = element("input", { type: "number", min: 1, step: 1, value: 10 });
const lead = element("input", { type: "number", min: 0, step: 1, value: 60 });
const pending = element("input", { type: "checkbox", checked: true });
const created = element("div", { role: "status" });
const createButton = element("button", { type: "button", textContent: t("debug.create_button") });
createButton.addEventListener("click", async () => {
  created.textContent = "";
  try {
    const answer = await call("/api/debug/sessions", {
      starts_in_s: Math.round(Number(startsIn.value) * 60),
      duration_s: Math.round(Number(duration.value) * 60),
      lobby_lead_s: Math.round(Number(lead.value)),
      booking_status: pending.checked ? "pending" : "confirmed",
    });
    sessionId.value = answer.session.id;
    const links = element("ul");
    for (const [role, path] of Object.entries(answer.links)) {
      const url = new URL(path, location.origin).href;
      links.append(element("li", {}, `${t(`role.${role}`)}: `, element("a", { href: url, textContent: url, target: "_blank" })));
    }
    created.append(element("p", { textContent: t("debug.links", { id: answer.session.id }) }), links);
    log.info("debug.session_created", { session_id: answer.session.id });
  } catch (error) {
    created.textContent = t("debug.failed", { detail: error.message });
  }
  refresh();
});
const pendingLabel = element("label", {}, pending, ` ${t("debug.pending")}`);
root.append(
  section(
    "debug.create",
    ...field("debug-starts-in", t("debug.starts_in_min"), startsIn),
    ...field("debug-duration", t("debug.duration_min"), duration),
    ...field("debug-lead", t("debug.lead_s"), lead),
    pendingLabel,
    element("p", {}, createButton),
    created,
  ),
);

// Force a lobby open.
const sessionId = element("input", { type: "text", autocomplete: "off" });
const forced = element("p", { role: "status" });
const forceButton = element("button", { type: "button", textContent: t("debug.force_button") });
forceButton.addEventListener("click", async () => {
  forced.textContent = "";
  try {
    const id = sessionId.value.trim();
    await call(`/api/debug/sessions/${encodeURIComponent(id)}/open-lobby`);
    forced.textContent = t("debug.forced", { id });
  } catch (error) {
    forced.textContent = t("debug.failed", { detail: error.message });
  }
  refresh();
});
root.append(section("debug.force", ...field("debug-session-id", t("debug.session_id"), sessionId), element("p", {}, forceButton), forced));

// Cleanup.
const cleaned = element("p", { role: "status" });
const cleanupButton = element("button", { type: "button", textContent: t("debug.cleanup_button") });
cleanupButton.addEventListener("click", async () => {
  cleaned.textContent = "";
  try {
    const run = await call("/api/debug/cleanup");
    cleaned.textContent = t("debug.cleanup_result", {
      expired: run.expired,
      purged: run.purged,
      time: i18n.time(Date.parse(run.ran_at)),
    });
  } catch (error) {
    cleaned.textContent = t("debug.failed", { detail: error.message });
  }
  refresh();
});
root.append(section("debug.cleanup", element("p", {}, cleanupButton), cleaned));

// The system's state, live.
const stateView = element("div");
const refreshButton = element("button", { type: "button", className: "secondary", textContent: t("debug.refresh") });
refreshButton.addEventListener("click", () => refresh());
const logSwitch = element("input", { type: "checkbox", checked: debugEnabled() });
logSwitch.addEventListener("change", () => setDebug(logSwitch.checked));
root.append(
  section("debug.state", stateView, element("p", {}, refreshButton)),
  section("debug.log_switch", element("label", {}, logSwitch, ` ${t("debug.log_switch")}`)),
);

function table(caption, headers, rows) {
  const view = element("table", {}, element("caption", { textContent: caption }));
  view.append(element("tr", {}, ...headers.map((name) => element("th", { scope: "col", textContent: name }))));
  if (!rows.length) rows = [[t("debug.none")]];
  for (const row of rows) view.append(element("tr", {}, ...row.map((cell) => element("td", { textContent: String(cell ?? "") }))));
  return view;
}

async function refresh() {
  try {
    const response = await fetch("/api/debug/state", { cache: "no-store" });
    const state = await response.json();
    stateView.replaceChildren(
      table(t("debug.sessions_by_status"), [t("debug.col_status"), t("debug.col_count")], Object.entries(state.sessions_by_status)),
      table(
        t("debug.nodes"),
        [t("debug.col_node"), t("debug.col_sockets"), t("debug.col_sessions"), t("debug.col_at")],
        state.nodes.map((node) => [node.node, node.connections, node.sessions, i18n.time(Date.parse(node.reported_at))]),
      ),
      table(
        t("debug.deadlines"),
        [t("debug.col_session"), t("debug.col_kind"), t("debug.col_when")],
        state.deadlines.map((deadline) => [
          deadline.session_id,
          deadline.remaining_s ? `${deadline.kind} ${deadline.remaining_s} s` : deadline.kind,
          new Date(Date.parse(deadline.at)).toLocaleTimeString(i18n.lang),
        ]),
      ),
      element("p", { textContent: `${t("debug.bus")}: ${state.bus.kind}, ${t(state.bus.connected ? "debug.connected" : "debug.disconnected")}` }),
      element("p", { textContent: `${t("debug.bookings")}: ${state.bookings.source}${state.bookings.last_error ? ` (${state.bookings.last_error})` : ""}` }),
      table(
        t("debug.outbox"),
        [t("debug.col_target"), t("debug.col_pending"), t("debug.col_delivered"), t("debug.col_failed")],
        Object.entries(state.outbox.counts).map(([target, counts]) => [target, counts.pending, counts.delivered, counts.failed]),
      ),
      table(
        t("debug.undelivered"),
        [t("debug.col_session"), t("debug.col_event"), t("debug.col_attempts"), t("debug.col_error")],
        state.outbox.undelivered.map((delivery) => [
          delivery.session_id,
          `${delivery.target} ${delivery.type} (${delivery.status})`,
          delivery.attempts,
          delivery.last_error,
        ]),
      ),
    );
  } catch (error) {
    log.error("debug.state_failed", { error: String(error) });
  }
}

refresh();
setInterval(refresh, STATE_EVERY_MS);
