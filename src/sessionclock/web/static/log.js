// log.js: what the pages do, in the console behind a switch, and errors to the server.
//
// The switch: add ?debug=1 to a page's address once (it is remembered in this
// browser), or tick it on /debug; ?debug=0 turns it off. Errors are always sent to
// the server's structured log as `client.<event>`, a few per page at most.

const SWITCH_KEY = "sessionclock.debug";
const MAX_REPORTS = 10;
let reports = 0;

function readSwitch() {
  try {
    const asked = new URLSearchParams(globalThis.location?.search ?? "").get("debug");
    if (asked === "1" || asked === "0") globalThis.localStorage?.setItem(SWITCH_KEY, asked);
    return globalThis.localStorage?.getItem(SWITCH_KEY) === "1";
  } catch {
    return false; // Storage can be refused (private windows, embedded frames).
  }
}

export function debugEnabled() {
  return readSwitch();
}

export function setDebug(enabled) {
  try {
    globalThis.localStorage?.setItem(SWITCH_KEY, enabled ? "1" : "0");
  } catch {
    // Nothing to remember it in; the console stays quiet.
  }
}

/** A logger for one page or component; `context` goes with every line. */
export function createLog(context = {}, { baseUrl = "" } = {}) {
  const line = (level, event, fields = {}) => {
    if (!readSwitch()) return;
    console[level](`[sessionclock] ${event}`, { ...context, ...fields });
  };
  return {
    debug: (event, fields) => line("debug", event, fields),
    info: (event, fields) => line("info", event, fields),
    warn: (event, fields) => line("warn", event, fields),
    error(event, fields = {}) {
      line("error", event, fields);
      report(baseUrl, event, { ...context, ...fields });
    },
  };
}

function report(baseUrl, event, fields) {
  if (reports >= MAX_REPORTS) return;
  reports += 1;
  const name = event.toLowerCase().replace(/[^a-z0-9_.]+/g, "_").replace(/^[^a-z]+/, "") || "error";
  const { page, session_id, ...rest } = fields;
  const body = {
    level: "error",
    event: name.slice(0, 64),
    message: JSON.stringify(rest, (key, value) => (value instanceof Error ? value.message : value)).slice(0, 2000),
  };
  if (page) body.page = page;
  if (session_id) body.session_id = session_id;
  fetch(`${baseUrl}/api/client-logs`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    keepalive: true,
  }).catch(() => {});
}

/** Send uncaught errors of this page to the server's log too. */
export function reportUncaught(log) {
  globalThis.addEventListener?.("error", (event) => {
    log.error("uncaught_error", { message: event.message, source: event.filename, line: event.lineno });
  });
  globalThis.addEventListener?.("unhandledrejection", (event) => {
    log.error("unhandled_rejection", { message: String(event.reason?.message ?? event.reason) });
  });
}
