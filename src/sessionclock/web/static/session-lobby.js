// session-lobby.js: <session-lobby>, one session's lobby as a web component.
//
// On any page, with one script tag and a participant token:
//
//   <script type="module" src="https://clock.example.com/static/session-lobby.js"></script>
//   <session-lobby session-id="s-42" token="eyJ…" mode="dialog" autoopen></session-lobby>
//
// Attributes:
//   session-id  the session (required)
//   token       a participant token; leave it out on sessionclock's own pages,
//               where the sign-in cookie is sent instead
//   user-id     the participant this page is for; asked of /api/me when missing
//   lang        "en" or "es"; else the page's <html lang>, else the browser's
//   mode        "dialog" (a modal dialog, shown with open()) or "inline" (a section
//               that goes from lobby to call to ending)
//   autoopen    in dialog mode: open on its own when the lobby opens, unless this
//               participant closed it for this session before
//
// Events (on the element): "lobby-open" (detail.auto: opened on its own),
// "lobby-close", "call-open" (both are ready; the page decides where the call is),
// "session-end". Methods: open(), close(). In inline mode the call runs in the
// element itself (call-view.js), from the moment both are ready until the end.

import { CallView } from "./call-view.js";
import { SessionClient, formatRemaining } from "./sessionclock.js";
import { loadCatalogue, pickLanguage } from "./i18n.js";
import { createLog } from "./log.js";

const CLOSED_KEY = "sessionclock.closed.";
const TICK_MS = 250;
const OPEN_STATUSES = new Set(["waiting", "ready"]);
const ENDED_STATUSES = new Set(["expired", "cancelled"]);

function markup(t, mode) {
  const close =
    mode === "dialog"
      ? `<button type="button" data-action="close">${t("action.close")}</button>`
      : "";
  const body = `
    <div class="lobby">
      <header>
        <h2 data-title>${t("lobby.title")}</h2>
        <p class="when" data-when></p>
      </header>
      <p class="booking" data-booking hidden>${t("lobby.booking_pending")}</p>
      <p class="connection" data-connection>${t("lobby.connecting")}</p>
      <div class="clock" data-clock>
        <span class="clock-label" data-clock-label></span>
        <span class="timer" role="timer" aria-live="off" aria-atomic="true" data-timer></span>
      </div>
      <p class="visually-hidden" aria-live="polite" aria-atomic="true" data-announce></p>
      <p class="status" data-status></p>
      <section class="call" data-call hidden aria-labelledby="call-title">
        <h3 id="call-title">${t("call.title")}</h3>
        <p data-call-until></p>
        <div class="stage" data-stage role="region" aria-label="${t("call.stage")}">
          <p>${t("call.stage_soon")}</p>
        </div>
      </section>
      <section class="ended" data-ended hidden aria-labelledby="ended-title">
        <h3 id="ended-title">${t("ended.title")}</h3>
        <p data-ended-reason></p>
        <p data-ended-at></p>
      </section>
      <h3 class="visually-hidden" id="participants-title">${t("participant.label")}</h3>
      <ul class="participants" aria-labelledby="participants-title">
        <li data-role="client"></li>
        <li data-role="companion"></li>
      </ul>
      <p class="warning" data-warning hidden></p>
      <p class="error" role="alert" data-error></p>
      <div class="actions">
        <button type="button" class="primary" data-action="ready" hidden></button>
        <button type="button" class="primary" data-action="join" hidden>${t("action.join")}</button>
        ${close}
      </div>
    </div>`;
  if (mode === "dialog") {
    return `<dialog aria-labelledby="lobby-title">${body.replace("data-title", 'id="lobby-title" data-title')}</dialog>`;
  }
  return `<section class="inline" aria-labelledby="lobby-title">${body.replace("data-title", 'id="lobby-title" data-title')}</section>`;
}

export class SessionLobby extends HTMLElement {
  constructor() {
    super();
    this.client = null;
    this.i18n = null;
    this._ticker = null;
    this._lastStatus = null;
    this._announcedMinutes = null;
    this._pendingAction = false;
    this._ready = null;
    this.call = null;
  }

  /** Resolves once the element has its strings, its user and its first state. */
  get ready() {
    return this._ready;
  }

  get sessionId() {
    return this.getAttribute("session-id");
  }

  get mode() {
    return this.getAttribute("mode") === "dialog" ? "dialog" : "inline";
  }

  get snapshot() {
    return this.client?.snapshot ?? null;
  }

  connectedCallback() {
    if (!this._ready) this._ready = this._start();
  }

  disconnectedCallback() {
    this.call?.stop();
    this.call = null;
    this.client?.stop();
    clearInterval(this._ticker);
    this._ready = null;
  }

  /** Show the dialog (dialog mode); a participant's explicit open forgets a close. */
  open({ auto = false } = {}) {
    const dialog = this.shadowRoot?.querySelector("dialog");
    if (!dialog) return;
    if (!auto) this._forgetClosed();
    if (!dialog.open) {
      dialog.showModal();
      this.log.info("lobby.opened", { auto });
      this.dispatchEvent(new CustomEvent("lobby-open", { detail: { auto } }));
    }
  }

  close() {
    this.shadowRoot?.querySelector("dialog")?.close();
  }

  async _start() {
    const baseUrl = (this.getAttribute("base-url") ?? new URL(import.meta.url).origin).replace(/\/$/, "");
    const lang = pickLanguage(this.getAttribute("lang"), document.documentElement.lang, navigator.languages);
    this.i18n = await loadCatalogue(lang);
    this.log = createLog({ page: "lobby", session_id: this.sessionId }, { baseUrl });
    const t = (key, vars) => this.i18n.t(key, vars);

    const root = this.shadowRoot ?? this.attachShadow({ mode: "open" });
    root.innerHTML = `<link rel="stylesheet" href="${new URL("./lobby.css", import.meta.url)}">${markup(t, this.mode)}`;
    this.$ = (name) => root.querySelector(`[data-${name}]`);
    root.querySelector('[data-action="ready"]').addEventListener("click", () => this._toggleReady());
    root.querySelector('[data-action="join"]').addEventListener("click", () => this._openCall());
    root.querySelector('[data-action="close"]')?.addEventListener("click", () => this.close());
    root.querySelector("dialog")?.addEventListener("keydown", (event) => this._keepFocusInside(event));
    root.querySelector("dialog")?.addEventListener("close", () => {
      this._rememberClosed();
      this.log.info("lobby.closed", {});
      this.dispatchEvent(new CustomEvent("lobby-close"));
    });

    const token = this.getAttribute("token") || null;
    this._token = token;
    this._baseUrl = baseUrl;
    this.userId = this.getAttribute("user-id") || (await this._whoAmI(baseUrl, token));
    this.client = new SessionClient({
      sessionId: this.sessionId,
      token,
      baseUrl,
      syncIntervalS: Number(this.getAttribute("sync-interval-s")) || 2,
      log: (message, detail) => this.log.debug("client", { message, detail: String(detail ?? "") }),
    });
    this.client.addEventListener("snapshot", () => this._render());
    this.client.addEventListener("transport", () => this._renderConnection());
    this.client.addEventListener("clock", () => {
      const { estimator } = this.client;
      this.log.debug("clock.synced", {
        offset_ms: Math.round(this.client.offsetMs),
        error_bound_ms: estimator.errorBoundMs,
        round_trip_ms: estimator.roundTripMs,
      });
    });
    this.client.addEventListener("warning", () => this._warn(this.client.lastWarning.remaining_s));
    this.client.addEventListener("failure", () => this._fail(this.client.lastError));
    this.client.start();
    this._ticker = setInterval(() => this._renderClock(), TICK_MS);
    await new Promise((resolve) => {
      if (this.client.snapshot) resolve();
      else this.client.addEventListener("snapshot", resolve, { once: true });
    });
  }

  async _whoAmI(baseUrl, token) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch(`${baseUrl}/api/me`, { headers, cache: "no-store" });
    if (!response.ok) {
      this.log.error("lobby.who_am_i_failed", { status: response.status });
      return null;
    }
    return (await response.json()).user_id;
  }

  _myRole(session) {
    return ["client", "companion"].find((role) => session.participants[role].user_id === this.userId);
  }

  _render() {
    const session = this.snapshot;
    if (!session) return;
    const t = (key, vars) => this.i18n.t(key, vars);
    const me = this._myRole(session);
    const other = me === "client" ? "companion" : "client";
    const status = session.status;
    const ended = ENDED_STATUSES.has(status);
    const startsAtMs = Date.parse(session.starts_at);
    const endsAtMs = Date.parse(session.ends_at);

    if (status !== this._lastStatus) {
      this.log.info("session.status", { from: this._lastStatus, to: status, version: session.version });
    }
    this.$("when").textContent = t("lobby.when", {
      day: this.i18n.day(startsAtMs),
      start: this.i18n.time(startsAtMs),
      end: this.i18n.time(endsAtMs),
    });
    this.$("booking").hidden = session.booking_status !== "pending" || ended;

    // What the lobby says, by status and by who is ready.
    let line = t(`status.${status}`);
    if (status === "scheduled") {
      line = t("lobby.opens_at", { time: this.i18n.time(Date.parse(session.lobby_opens_at)) });
    } else if (status === "waiting") {
      const mine = session.participants[me]?.ready;
      const theirs = session.participants[other]?.ready;
      if (mine && !theirs) line = t("lobby.waiting_other", { role: t(`role.${other}`) });
      else if (theirs && !mine) line = t("lobby.waiting_you", { role: t(`role.${other}`) });
      else line = t("lobby.waiting_both");
    }
    this.$("status").textContent = line;
    this.$("status").hidden = ended || (status === "ready" && this.mode === "inline");

    for (const role of ["client", "companion"]) {
      const participant = session.participants[role];
      const who = role === me ? `${t(`role.${role}`)} (${t("participant.you")})` : t(`role.${role}`);
      const item = this.shadowRoot.querySelector(`[data-role="${role}"]`);
      item.textContent = "";
      const name = document.createElement("span");
      name.className = "who";
      name.textContent = who.charAt(0).toUpperCase() + who.slice(1);
      const state = document.createElement("span");
      state.className = participant.ready ? "state is-ready" : "state";
      state.textContent = participant.ready ? t("participant.ready") : t("participant.not_ready");
      const presence = document.createElement("span");
      presence.className = participant.online ? "presence is-online" : "presence";
      presence.textContent = participant.online ? t("participant.online") : t("participant.offline");
      item.append(name, ": ", state, ", ", presence);
    }

    // Actions: ready until the call opens (it cannot be taken back then).
    const readyButton = this.shadowRoot.querySelector('[data-action="ready"]');
    const mine = Boolean(session.participants[me]?.ready);
    readyButton.hidden = !(status === "scheduled" || status === "waiting") || !me;
    readyButton.disabled = status !== "waiting" || this._pendingAction;
    readyButton.textContent = mine ? t("action.not_ready") : t("action.ready");
    readyButton.setAttribute("aria-pressed", String(mine));
    this.shadowRoot.querySelector('[data-action="join"]').hidden = !(status === "ready" && this.mode === "dialog");

    // The call and the ending.
    this.$("call").hidden = !(status === "ready" && this.mode === "inline");
    this.$("call-until").textContent = t("call.until", { time: this.i18n.time(endsAtMs) });
    this.$("ended").hidden = !ended;
    this.$("clock").hidden = ended;
    if (ended) this.$("ended-reason").textContent = this._endedReason(session, t);
    this.$("ended-at").textContent = session.ended_at ? t("ended.at", { time: this.i18n.time(Date.parse(session.ended_at)) }) : "";
    if (ended) this.$("warning").hidden = true;

    this._renderConnection();
    this._renderClock();
    this._renderCall(status);
    this._afterChange(session, this._lastStatus);
    this._lastStatus = status;
  }

  _renderCall(status) {
    // The call lives exactly as long as the status is `ready`, whatever the page.
    if (status === "ready" && this.mode === "inline" && !this.call) {
      this.call = new CallView({
        stage: this.$("stage"),
        client: this.client,
        sessionId: this.sessionId,
        baseUrl: this._baseUrl,
        token: this._token,
        t: (key, vars) => this.i18n.t(key, vars),
        log: this.log,
      });
      this.call.start().catch((error) => this.log.error("call.failed", { error: String(error) }));
    } else if (status !== "ready" && this.call) {
      this.call.stop();
      this.call = null;
    }
  }

  _endedReason(session, t) {
    if (session.status === "cancelled" || session.expired_reason === "cancelled") return t("ended.cancelled");
    if (session.expired_reason === "no_show") {
      const absent = session.absent ?? [];
      if (absent.length === 1) return t("ended.no_show_one", { role: t(`role.${absent[0]}`) });
      return t("ended.no_show_both");
    }
    return t("ended.time_up");
  }

  _afterChange(session, previous) {
    const status = session.status;
    if (status === previous) return;
    if (this.mode === "dialog" && this.hasAttribute("autoopen") && OPEN_STATUSES.has(status) && !this._wasClosed()) {
      this.open({ auto: true });
    }
    if (status === "ready") {
      this.dispatchEvent(new CustomEvent("call-open", { detail: { session, closed: this._wasClosed() } }));
    }
    if (ENDED_STATUSES.has(status)) {
      this.dispatchEvent(new CustomEvent("session-end", { detail: { session } }));
    }
    if (previous !== null && this.mode === "inline") {
      // A new phase: move the reader's focus to what it is about.
      const heading = status === "ready" ? this.$("call")?.querySelector("h3") : ENDED_STATUSES.has(status) ? this.$("ended")?.querySelector("h3") : null;
      if (heading) {
        heading.tabIndex = -1;
        heading.focus();
      }
    }
  }

  _renderConnection() {
    if (!this.i18n) return;
    const connection = this.$("connection");
    const transport = this.client?.transport;
    const session = this.snapshot;
    if (!session) {
      connection.textContent = this.i18n.t("lobby.connecting");
      connection.hidden = false;
    } else if (transport === "reconnecting" && !ENDED_STATUSES.has(session.status)) {
      connection.textContent = this.i18n.t("lobby.offline");
      connection.hidden = false;
    } else {
      connection.hidden = true;
    }
  }

  _renderClock() {
    const session = this.snapshot;
    if (!session || ENDED_STATUSES.has(session.status)) return;
    const t = (key, vars) => this.i18n.t(key, vars);
    const remainingMs = this.client.remainingMs();
    const beforeStart = this.client.serverNowMs() < Date.parse(session.starts_at);
    const label = beforeStart ? t("lobby.starts_in") : t("lobby.time_left");
    if (this.$("clock-label").textContent !== label) this.$("clock-label").textContent = label;
    const text = formatRemaining(remainingMs);
    const timer = this.$("timer");
    if (timer.textContent !== text) timer.textContent = text;

    // Screen readers hear the time once a minute, not every second.
    const minutes = Math.ceil(remainingMs / 60_000);
    const key = `${beforeStart}:${minutes}`;
    if (this._announcedMinutes === null) {
      this._announcedMinutes = key;
    } else if (key !== this._announcedMinutes && remainingMs > 0) {
      this._announcedMinutes = key;
      const whole = Math.floor(remainingMs / 60_000);
      if (whole < 1) this._announce(t("announce.seconds_left"));
      else this._announce(t(beforeStart ? "announce.starts_in" : "announce.left", { count: whole }));
    }
  }

  _announce(text) {
    this.$("announce").textContent = text;
  }

  _warn(remainingS) {
    // Say what is really left: a session shorter than a threshold hears it at
    // connect, and nothing is "left in the session" before it starts.
    const session = this.snapshot;
    const nowMs = this.client.serverNowMs();
    if (!session || nowMs < Date.parse(session.starts_at)) return;
    const leftMs = Date.parse(session.ends_at) - nowMs;
    if (leftMs <= 0) return;
    const minutes = Math.max(1, Math.round(Math.min(leftMs, remainingS * 1000) / 60_000));
    const text = this.i18n.t("warning.left", { count: minutes });
    const warning = this.$("warning");
    warning.textContent = text;
    warning.hidden = false;
    this.call?.warn(text);
    this._announce(text);
    this.log.info("session.warning", { remaining_s: remainingS });
  }

  _fail(error) {
    const t = (key, vars) => this.i18n.t(key, vars);
    const status = this.snapshot?.status;
    let text;
    if (error.status === 401) text = t("error.signed_out");
    else if (error.status === 409 && status === "scheduled") text = t("error.not_open");
    else if (error.status === 409 && ENDED_STATUSES.has(status)) text = t("error.ended");
    else text = t("error.generic", { detail: error.detail });
    this.$("error").textContent = text;
    this.log.error("lobby.failed", { status: error.status, detail: error.detail });
  }

  async _toggleReady() {
    const session = this.snapshot;
    const me = session && this._myRole(session);
    if (!me) return;
    const wanted = !session.participants[me].ready;
    this.$("error").textContent = "";
    this._pendingAction = true;
    this._render();
    try {
      await this.client.setReady(wanted);
      this.log.info("lobby.ready", { ready: wanted });
    } catch (error) {
      this._fail({ status: error.status, detail: error.message });
    } finally {
      this._pendingAction = false;
      this._render();
    }
  }

  _openCall() {
    this.dispatchEvent(new CustomEvent("call-open", { detail: { session: this.snapshot, closed: false, asked: true } }));
  }

  /** Tab from the last control goes to the first, Shift+Tab the other way round. */
  _keepFocusInside(event) {
    if (event.key !== "Tab") return;
    const controls = [...this.shadowRoot.querySelectorAll("button, a[href], input, [tabindex='0']")].filter(
      (control) => !control.disabled && control.offsetParent !== null,
    );
    if (!controls.length) return;
    const first = controls[0];
    const last = controls[controls.length - 1];
    const current = this.shadowRoot.activeElement;
    if (event.shiftKey && (current === first || !controls.includes(current))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (current === last || !controls.includes(current))) {
      event.preventDefault();
      first.focus();
    }
  }

  _rememberClosed() {
    try {
      localStorage.setItem(CLOSED_KEY + this.sessionId, "1");
    } catch {
      // Without storage the dialog may open again after a reload; nothing breaks.
    }
  }

  _forgetClosed() {
    try {
      localStorage.removeItem(CLOSED_KEY + this.sessionId);
    } catch {
      // As above.
    }
  }

  _wasClosed() {
    try {
      return localStorage.getItem(CLOSED_KEY + this.sessionId) === "1";
    } catch {
      return false;
    }
  }
}

if (!customElements.get("session-lobby")) customElements.define("session-lobby", SessionLobby);
