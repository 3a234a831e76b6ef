// sessionclock.js: one session's live state and the server's clock, in the browser.
//
// A plain ES module, served by sessionclock at /static/sessionclock.js; no build step.
//
//   import { SessionClient, formatRemaining } from "/static/sessionclock.js";
//   const client = new SessionClient({ sessionId, token });  // token: see below
//   client.addEventListener("snapshot", () => render(client.snapshot));
//   client.start();
//   setInterval(() => show(formatRemaining(client.remainingMs())), 250);
//
// Transports, best first: the session's WebSocket, its Server-Sent Events stream,
// then polling `GET …/ready` every `syncIntervalS`. Whatever the transport, the
// countdown runs on the server's clock: the offset is estimated from `time`
// exchanges (where the bounds that each one sets overlap), and time passes by
// `performance.now()`, so changing the computer's clock does not move the countdown.
//
// `token` is a participant token. On sessionclock's own pages leave it out: the
// sign-in link left an HttpOnly cookie that the browser sends by itself.

// The server stamps its clock floored to whole milliseconds: its clock read up to a
// millisecond more than the stamp says.
const STAMP_RESOLUTION_MS = 1;

// How the client samples the server's clock: a burst of exchanges when it connects,
// a shorter one every minute, the most recent exchanges kept, an older one's bounds
// widened by the drift its age allows. The same numbers as sessionclock.constants.
export const CLOCK_CONNECT_EXCHANGES = 20;
export const CLOCK_RESYNC_EXCHANGES = 10;
export const CLOCK_RESYNC_INTERVAL_S = 60;
export const CLOCK_KEPT_EXCHANGES = 30;
export const CLOCK_DRIFT_PPM = 50;

/**
 * The offset of the server's clock from ours, from recent exchanges.
 *
 * The server read its clock between t0 and t3, so each exchange bounds the offset:
 * serverMs - t3 <= offset <= serverMs + 1 ms - t0. The estimate is the middle of the
 * intersection of the kept samples' bounds, off by at most `errorBoundMs`; an older
 * sample's bounds are first widened by `driftPpm` of the time from its send to the
 * newest reply, as far as the two clocks may have drifted apart since. When the
 * bounds do not overlap (the server's clock stepped, or a sample is wrong), the
 * newest samples that still overlap count. `core/clock_sync.py` does exactly the
 * same, and explains why.
 */
export class OffsetEstimator {
  constructor({ keep = CLOCK_KEPT_EXCHANGES, driftPpm = CLOCK_DRIFT_PPM } = {}) {
    if (!(keep >= 1)) throw new RangeError(`expected keep >= 1, got keep=${keep}`);
    if (!(driftPpm >= 0)) {
      throw new RangeError(`expected driftPpm >= 0, got driftPpm=${driftPpm}`);
    }
    this.keep = keep;
    this.driftPerMs = driftPpm / 1_000_000;
    this.samples = [];
    this._interval = null;
  }

  /** One exchange: sent at t0 (our clock), stamped serverMs, received at t3. */
  add(t0, serverMs, t3) {
    if (t3 < t0) throw new RangeError("a reply cannot arrive before its request");
    this.samples.push({
      t0,
      t3,
      roundTripMs: t3 - t0,
      lowMs: serverMs - t3,
      highMs: serverMs + STAMP_RESOLUTION_MS - t0,
    });
    if (this.samples.length > this.keep) this.samples.shift();
    this._interval = this._intersect();
  }

  /** Server clock minus ours, in ms; null before the first exchange. The middle of
   * the intersection of the kept samples' bounds, or of the newest ones' that still
   * overlap. */
  get offsetMs() {
    if (this._interval === null) return null;
    return (this._interval.lowMs + this._interval.highMs) / 2;
  }

  /** How far `offsetMs` can be off at most, in ms: half the intersection's width,
   * as of the server's stamp in the newest sample (while the clocks drift apart no
   * faster than `driftPpm`); null before the first exchange. */
  get errorBoundMs() {
    if (this._interval === null) return null;
    return (this._interval.highMs - this._interval.lowMs) / 2;
  }

  /** The shortest round trip kept: a measure of the path, not an error bound. */
  get roundTripMs() {
    if (this.samples.length === 0) return null;
    return Math.min(...this.samples.map((sample) => sample.roundTripMs));
  }

  _intersect() {
    // From the newest back, stopping before the first sample that would leave
    // nothing: after a step of the server's clock the recent samples win.
    const newest = this.samples[this.samples.length - 1];
    let { lowMs, highMs } = newest;
    for (let i = this.samples.length - 2; i >= 0; i -= 1) {
      // The offset may have moved since this sample was sent, by the allowed drift.
      const sample = this.samples[i];
      const slackMs = (newest.t3 - sample.t0) * this.driftPerMs;
      const nextLowMs = Math.max(lowMs, sample.lowMs - slackMs);
      const nextHighMs = Math.min(highMs, sample.highMs + slackMs);
      if (nextHighMs < nextLowMs) break;
      lowMs = nextLowMs;
      highMs = nextHighMs;
    }
    return { lowMs, highMs };
  }
}

/** A monotonic reading in epoch ms: it only moves forward, whatever the system clock. */
export function monotonicNowMs() {
  return performance.timeOrigin + performance.now();
}

/** Remaining time as the contract shows it: M:SS, or H:MM:SS from an hour on. */
export function formatRemaining(remainingMs) {
  const totalS = Math.max(0, Math.ceil(remainingMs / 1000));
  const hours = Math.floor(totalS / 3600);
  const minutes = Math.floor((totalS % 3600) / 60);
  const seconds = String(totalS % 60).padStart(2, "0");
  if (hours > 0) return `${hours}:${String(minutes).padStart(2, "0")}:${seconds}`;
  return `${minutes}:${seconds}`;
}

/**
 * One participant's live view of one session.
 *
 * Events (all plain `Event`s; read the state from the client):
 * - `snapshot`: `client.snapshot` changed (a newer version, or who is online).
 * - `warning`: `client.lastWarning` is `{remaining_s}`.
 * - `transport`: `client.transport` is now "websocket", "sse", "polling",
 *   "reconnecting" (a live socket dropped; another is on its way) or "closed".
 * - `clock`: `client.offsetMs` changed.
 * - `failure`: `client.lastError` says what went wrong (a refused token, say).
 * - `call`, `signal`: `CustomEvent`s whose `detail` is the socket's frame: the
 *   other participant joined or left the call, or sent WebRTC signalling.
 */
export class SessionClient extends EventTarget {
  constructor({
    sessionId,
    token,
    baseUrl = globalThis.location?.origin ?? "",
    syncIntervalS = 2,
    resyncIntervalS = CLOCK_RESYNC_INTERVAL_S,
    now = monotonicNowMs,
    log = () => {},
  }) {
    super();
    this.sessionId = sessionId;
    this.token = token;
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.syncIntervalMs = syncIntervalS * 1000;
    this.resyncIntervalMs = resyncIntervalS * 1000;
    this.now = now;
    this.log = log;
    this.estimator = new OffsetEstimator();
    this.snapshot = null;
    this.transport = "closed";
    this.lastWarning = null;
    this.lastError = null;
    this._socket = null;
    this._stream = null;
    this._timers = new Set();
    this._stopPolling = null;
    this._retryMs = 500;
    this._syncing = null;
    this._stopped = true;
    this._onVisible = () => {
      if (globalThis.document?.visibilityState === "visible") this.syncClock();
    };
  }

  /** Connect and keep connected until `stop()`. */
  start() {
    this._stopped = false;
    globalThis.document?.addEventListener("visibilitychange", this._onVisible);
    this._every(this.resyncIntervalMs, () => this.syncClock());
    this._connectSocket();
  }

  stop() {
    this._stopped = true;
    this._stopPolling?.();
    globalThis.document?.removeEventListener("visibilitychange", this._onVisible);
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    this._socket?.close(1000);
    this._stream?.close();
    this._setTransport("closed");
  }

  /** Server clock minus ours (ms); 0 until the first exchange. */
  get offsetMs() {
    return this.estimator.offsetMs ?? 0;
  }

  /** The server's time now, in epoch ms. */
  serverNowMs() {
    return this.now() + this.offsetMs;
  }

  /** Time left until the start while the session has not started, then until the end. */
  remainingMs() {
    if (!this.snapshot) return 0;
    const now = this.serverNowMs();
    const startsAt = Date.parse(this.snapshot.starts_at);
    const target = now < startsAt ? startsAt : Date.parse(this.snapshot.ends_at);
    return Math.max(0, target - now);
  }

  /** The role of the user this token names, once the first snapshot is in. */
  roleOf(userId) {
    const participants = this.snapshot?.participants ?? {};
    return Object.keys(participants).find((role) => participants[role].user_id === userId);
  }

  /** Say "I'm ready" (or take it back); resolves with the new snapshot over HTTP. */
  async setReady(ready) {
    if (this._socket?.readyState === 1) {
      this._socket.send(JSON.stringify({ type: "ready", ready }));
      return this.snapshot;
    }
    const response = await this._fetch(`/api/sessions/${this.sessionId}/ready`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ready }),
    });
    const body = await response.json();
    if (!response.ok) throw Object.assign(new Error(body.detail), { status: response.status });
    this._apply(body);
    return this.snapshot;
  }

  /** Send one frame on the socket; false when no socket is open to carry it. */
  send(message) {
    if (this._socket?.readyState !== 1) return false;
    this._socket.send(JSON.stringify(message));
    return true;
  }

  /** Estimate the offset again: over the socket when open, else over HTTP. A call
   * made while a run is under way joins that run. */
  syncClock(exchanges = CLOCK_RESYNC_EXCHANGES) {
    // One run at a time: a page shown again or a reconnect during a run would
    // otherwise double the frames that the socket's rate limit counts.
    this._syncing ??= this._runExchanges(exchanges).finally(() => {
      this._syncing = null;
    });
    return this._syncing;
  }

  async _runExchanges(exchanges) {
    for (let i = 0; i < exchanges; i += 1) {
      if (this._socket?.readyState === 1) {
        this._socket.send(JSON.stringify({ type: "time", t0: this.now() }));
      } else {
        const t0 = this.now();
        try {
          const response = await this._fetch("/api/time", {});
          const body = await response.json();
          this.estimator.add(t0, body.server_time_ms, this.now());
        } catch (error) {
          this.log("clock sync failed", error);
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this._emit("clock");
  }

  _connectSocket() {
    if (this._stopped || this._socket) return;
    const url = new URL(`${this.baseUrl}/api/sessions/${this.sessionId}/ws`, globalThis.location?.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.token) url.searchParams.set("access_token", this.token);
    let opened = false;
    let socket;
    const connectingSince = this.now();
    try {
      socket = new WebSocket(url);
    } catch (error) {
      this.log("websocket unavailable", error);
      this._connectStream();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      opened = true;
      this._retryMs = 500;
      // Push is back: whatever carried us meanwhile stops.
      this._stopPolling?.();
      this._stream?.close();
      this._stream = null;
      this._setTransport("websocket");
      this.syncClock(CLOCK_CONNECT_EXCHANGES);
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      // Until a `time` answer comes, the first snapshot's stamp is a coarse sample.
      if (message.type === "snapshot" && this.estimator.offsetMs === null) {
        this.estimator.add(connectingSince, message.session.server_time_ms, this.now());
      }
      this._receive(message);
    };
    socket.onclose = (event) => {
      this._socket = null;
      if (this._stopped) return;
      if (!opened) {
        // Refused or unreachable: the event stream may still get through.
        this._connectStream();
        return;
      }
      this.log("websocket closed", event.code);
      this._setTransport("reconnecting");
      this._later(this._nextRetryMs(), () => this._connectSocket());
    };
  }

  _connectStream() {
    if (this._stopped || this._stream) return;
    if (typeof EventSource === "undefined") {
      this._startPolling();
      return;
    }
    let url = `${this.baseUrl}/api/sessions/${this.sessionId}/events`;
    if (this.token) url += `?access_token=${encodeURIComponent(this.token)}`;
    const stream = new EventSource(url);
    this._stream = stream;
    let opened = false;
    stream.onopen = () => {
      opened = true;
      this._stopPolling?.();
      this._setTransport("sse");
      this.syncClock(CLOCK_CONNECT_EXCHANGES);
      // A proxy that refused the socket may take it later: try again now and then.
      this._later(60_000, () => {
        if (this.transport === "sse") this._connectSocket();
      });
    };
    for (const type of ["snapshot", "presence", "warning"]) {
      stream.addEventListener(type, (event) => this._receive(JSON.parse(event.data)));
    }
    stream.onerror = () => {
      if (opened && stream.readyState !== 2) return; // EventSource reconnects itself.
      stream.close();
      this._stream = null;
      this._startPolling();
    };
  }

  _startPolling() {
    if (this._stopped || this._stopPolling) return;
    this._setTransport("polling");
    this.syncClock(CLOCK_CONNECT_EXCHANGES);
    const poll = async () => {
      try {
        const t0 = this.now();
        const response = await this._fetch(`/api/sessions/${this.sessionId}/ready`, {});
        const body = await response.json();
        // Every answer is stamped with the server's time: one more clock sample.
        if (body.server_time_ms) this.estimator.add(t0, body.server_time_ms, this.now());
        if (response.ok) this._apply(body);
        else this._fail(body.detail, response.status);
      } catch (error) {
        this.log("poll failed", error);
      }
    };
    poll();
    const stopEvery = this._every(this.syncIntervalMs, poll);
    const retry = setInterval(() => this._connectSocket(), 30_000);
    this._stopPolling = () => {
      stopEvery();
      clearInterval(retry);
      this._stopPolling = null;
    };
  }

  _receive(message) {
    if (message.type === "snapshot") {
      this._apply(message.session);
    } else if (message.type === "presence" && this.snapshot) {
      for (const [role, online] of Object.entries(message.online)) {
        if (this.snapshot.participants[role]) this.snapshot.participants[role].online = online;
      }
      this._emit("snapshot");
    } else if (message.type === "warning") {
      this.lastWarning = { remaining_s: message.remaining_s };
      this._emit("warning");
      // A warning from a version we have not seen: we missed a snapshot, fetch it.
      if (this.snapshot && message.version > this.snapshot.version) this._refetch();
    } else if (message.type === "time") {
      this.estimator.add(message.t0, message.server_time_ms, this.now());
    } else if (message.type === "error") {
      this._fail(message.detail, message.status);
    } else if (message.type === "call" || message.type === "signal") {
      this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
    }
  }

  _apply(session) {
    // Snapshots are whole states: the newest wins, older ones are dropped. The same
    // version again is applied: it may say more recently who is online.
    if (this.snapshot && session.version < this.snapshot.version) return;
    this.snapshot = session;
    this._emit("snapshot");
  }

  async _refetch() {
    try {
      const response = await this._fetch(`/api/sessions/${this.sessionId}`, {});
      if (response.ok) this._apply(await response.json());
    } catch (error) {
      this.log("refetch failed", error);
    }
  }

  _fail(detail, status) {
    this.lastError = { detail, status };
    this._emit("failure");
  }

  _fetch(path, options) {
    const headers = { ...(options.headers ?? {}) };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return fetch(`${this.baseUrl}${path}`, { ...options, headers, cache: "no-store" });
  }

  _nextRetryMs() {
    const wait = this._retryMs * (0.8 + Math.random() * 0.4);
    this._retryMs = Math.min(this._retryMs * 2, 10_000);
    return wait;
  }

  _setTransport(transport) {
    if (this.transport === transport) return;
    this.transport = transport;
    this._emit("transport");
  }

  _emit(type) {
    this.dispatchEvent(new Event(type));
  }

  _later(delayMs, action) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      action();
    }, delayMs);
    this._timers.add(timer);
  }

  /** Run `action` every interval until `stop()`; returns a function that ends it. */
  _every(intervalMs, action) {
    let ended = false;
    const tick = () => {
      if (this._stopped || ended) return;
      action();
      this._later(intervalMs, tick);
    };
    this._later(intervalMs, tick);
    return () => {
      ended = true;
    };
  }
}
