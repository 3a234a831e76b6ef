// home.js: "/": the participant's sessions, soonest first, in local time.
//
// Every session whose lobby opens within the next hour gets a <session-lobby> in
// dialog mode, connected to the server. The server pushes the moment the lobby
// opens; the dialog then opens on its own (unless the participant closed it for
// that session), with a chime and, where allowed, a browser notification. When both
// are ready the call opens: this page goes to the session's page.

import { boot } from "./page.js";
import "./session-lobby.js";

const WATCH_WITHIN_S = 3600;
const RELOAD_LIST_MS = 60_000;

const { config, i18n, log } = await boot();
const t = (key, vars) => i18n.t(key, vars);
const container = document.getElementById("sessions");
const lobbies = new Map();
const items = new Map();

function otherRole(session) {
  return session.participants.client.user_id === config.user_id ? "companion" : "client";
}

function itemFor(session) {
  const startsAtMs = Date.parse(session.starts_at);
  const other = otherRole(session);
  const item = document.createElement("li");
  item.className = "session-item";
  item.dataset.sessionId = session.id;

  const heading = document.createElement("h2");
  heading.textContent = t("lobby.when", {
    day: i18n.day(startsAtMs),
    start: i18n.time(startsAtMs),
    end: i18n.time(Date.parse(session.ends_at)),
  });
  const withWhom = document.createElement("p");
  withWhom.textContent = `${t("home.with", { user: session.participants[other].user_id })} · ${t("home.as", {
    role: t(`role.${other === "client" ? "companion" : "client"}`),
  })}`;
  const status = document.createElement("p");
  status.className = "item-status";
  status.textContent = t(`status.${session.status}`);

  const actions = document.createElement("div");
  actions.className = "actions";
  const open = document.createElement("button");
  open.type = "button";
  open.textContent = t("home.open_lobby");
  open.hidden = true;
  open.addEventListener("click", () => lobbies.get(session.id)?.open());
  const link = document.createElement("a");
  link.href = `/sessions/${encodeURIComponent(session.id)}`;
  link.textContent = t("home.session_page");
  actions.append(open, link);

  item.append(heading, withWhom, status, actions);
  return item;
}

function watch(session) {
  if (lobbies.has(session.id)) return;
  const lobby = document.createElement("session-lobby");
  lobby.setAttribute("mode", "dialog");
  lobby.setAttribute("autoopen", "");
  lobby.setAttribute("session-id", session.id);
  lobby.setAttribute("user-id", config.user_id);
  lobby.setAttribute("lang", config.lang);
  lobby.setAttribute("sync-interval-s", String(config.sync_interval_s));
  lobby.addEventListener("lobby-open", (event) => {
    if (event.detail.auto) announceLobby(lobby.snapshot);
  });
  lobby.addEventListener("call-open", (event) => {
    // The call opens for both: unless this participant closed the lobby, go to it.
    if (!event.detail.closed || event.detail.asked) {
      log.info("call.opening", { session_id: session.id });
      location.assign(`/sessions/${encodeURIComponent(session.id)}`);
    }
  });
  const update = () => {
    const snapshot = lobby.snapshot;
    const item = items.get(session.id);
    if (!snapshot || !item) return;
    item.querySelector(".item-status").textContent = t(`status.${snapshot.status}`);
    item.querySelector("button").hidden = false;
  };
  lobby.addEventListener("session-end", update);
  lobby.addEventListener("lobby-open", update);
  document.body.append(lobby);
  lobby.ready?.then(update);
  lobby.addEventListener("lobby-close", update);
  lobbies.set(session.id, lobby);
  // Snapshots arrive on the element's client; follow them for the list's text.
  lobby.ready?.then(() => lobby.client.addEventListener("snapshot", update));
}

function announceLobby(snapshot) {
  chime();
  if (!snapshot || !("Notification" in globalThis) || Notification.permission !== "granted") return;
  const minutes = Math.ceil((Date.parse(snapshot.starts_at) - Date.now()) / 60_000);
  const title = minutes > 0 ? t("notification.title", { count: minutes }) : t("notification.title_now");
  try {
    new Notification(title, { body: t("notification.body"), tag: `sessionclock-${snapshot.id}` });
  } catch (error) {
    log.warn("notification.failed", { error: String(error) });
  }
}

function chime() {
  // Two soft notes. Browsers may refuse sound before the first click: then silence.
  try {
    const audio = new AudioContext();
    const start = audio.currentTime;
    for (const [offset, frequency] of [[0, 660], [0.18, 880]]) {
      const note = audio.createOscillator();
      const gain = audio.createGain();
      note.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.15, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.35);
      note.connect(gain).connect(audio.destination);
      note.start(start + offset);
      note.stop(start + offset + 0.4);
    }
    setTimeout(() => audio.close(), 1000);
  } catch (error) {
    log.debug("chime.unavailable", { error: String(error) });
  }
}

function notificationControls() {
  const box = document.createElement("p");
  box.className = "notice";
  if (!("Notification" in globalThis)) return null;
  if (Notification.permission === "granted") {
    box.textContent = t("home.notifications_on");
  } else if (Notification.permission === "denied") {
    box.textContent = t("home.notifications_blocked");
  } else {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = t("home.notifications");
    button.addEventListener("click", async () => {
      const answer = await Notification.requestPermission();
      log.info("notification.permission", { answer });
      box.replaceWith(notificationControls() ?? document.createTextNode(""));
    });
    box.append(button);
  }
  return box;
}

async function load() {
  let body;
  try {
    const response = await fetch("/api/me/sessions", { cache: "no-store" });
    if (response.status === 401) {
      location.reload(); // The sign-in ran out: the server shows what to do.
      return;
    }
    body = await response.json();
    if (!response.ok) throw new Error(body.detail ?? `HTTP ${response.status}`);
  } catch (error) {
    log.error("sessions.load_failed", { error: String(error) });
    if (!items.size) container.textContent = t("home.load_failed", { detail: String(error.message ?? error) });
    return;
  }

  const sessions = body.sessions;
  const seen = new Set(sessions.map((session) => session.id));
  if (!sessions.length) {
    container.textContent = "";
    const empty = document.createElement("p");
    empty.textContent = t("home.empty");
    container.append(empty);
  } else {
    let list = container.querySelector("ul.sessions");
    if (!list) {
      container.textContent = "";
      list = document.createElement("ul");
      list.className = "sessions";
      list.setAttribute("aria-label", t("page.home"));
      container.append(list);
    }
    for (const session of sessions) {
      if (!items.has(session.id)) items.set(session.id, itemFor(session));
      list.append(items.get(session.id)); // In the server's order: soonest first.
    }
  }
  for (const [id, item] of items) {
    if (!seen.has(id)) {
      item.remove();
      items.delete(id);
    }
  }

  // Watch the near ones; the rest wait for a later reload of the list.
  for (const session of sessions) {
    const opensInS = (Date.parse(session.lobby_opens_at) - body.server_time_ms) / 1000;
    if (opensInS <= WATCH_WITHIN_S) watch(session);
  }
  for (const [id, lobby] of lobbies) {
    if (!seen.has(id) && !lobby.shadowRoot?.querySelector("dialog")?.open) {
      lobby.remove();
      lobbies.delete(id);
    }
  }
}

const controls = notificationControls();
if (controls) container.before(controls);
await load();
setInterval(load, RELOAD_LIST_MS);
