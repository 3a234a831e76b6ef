// call-view.js: the call as a participant sees it, inside the lobby's stage.
//
// The other's video large, one's own preview small, the time left always in view
// (in full screen too), and the controls: mute, camera off, choice of camera and
// microphone, full screen, hang up and rejoin. The built-in provider runs a
// PeerCall (call.js); a URL provider's page is embedded instead. Either way the
// server ends the call at `ends_at`: the lobby then calls stop(), which stops
// the tracks, closes the connection and empties the stage.

import { PeerCall } from "./call.js";
import { formatRemaining } from "./sessionclock.js";

const TICK_MS = 250;

function markup(t) {
  return `
    <div class="call-stage" data-call-stage>
      <video class="remote" data-remote autoplay playsinline aria-label="${t("call.remote_video")}"></video>
      <p class="call-notice" data-notice>${t("call.connecting")}</p>
      <video class="local" data-local autoplay playsinline muted aria-label="${t("call.local_video")}"></video>
      <p class="call-clock" aria-hidden="true"><span data-call-timer></span></p>
      <p class="call-quality" data-quality hidden></p>
      <p class="call-warning" aria-hidden="true" data-call-warning hidden></p>
    </div>
    <div class="call-controls" role="group" aria-label="${t("call.controls")}">
      <button type="button" data-control="mute" aria-pressed="false">${t("call.mute")}</button>
      <button type="button" data-control="camera" aria-pressed="false">${t("call.camera_off")}</button>
      <label class="device">${t("call.camera")} <select data-device="videoinput"></select></label>
      <label class="device">${t("call.microphone")} <select data-device="audioinput"></select></label>
      <button type="button" data-control="fullscreen">${t("call.fullscreen")}</button>
      <button type="button" class="danger" data-control="hangup">${t("call.hang_up")}</button>
      <button type="button" class="primary" data-control="rejoin" hidden>${t("call.rejoin")}</button>
    </div>
    <p class="call-media-error" role="alert" data-media-error></p>`;
}

export class CallView {
  constructor({ stage, client, sessionId, baseUrl, token, t, log }) {
    this.stage = stage;
    this.client = client;
    this.sessionId = sessionId;
    this.baseUrl = baseUrl;
    this.token = token;
    this.t = t;
    this.log = log;
    this.peer = null;
    this.access = null;
    this._ticker = null;
    this._stopped = false;
    this._left = false;
  }

  $(selector) {
    return this.stage.querySelector(selector);
  }

  /** Ask the server how to join, then join; nothing happens if the call is not open. */
  async start() {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    const response = await fetch(`${this.baseUrl}/api/sessions/${this.sessionId}/call`, { headers, cache: "no-store" });
    const body = await response.json();
    if (this._stopped) return;
    if (!response.ok) {
      this.log.error("call.refused", { status: response.status, detail: body.detail });
      return;
    }
    this.access = body;
    if (body.provider === "url") {
      this._embed(body.url);
      return;
    }
    this.stage.innerHTML = markup(this.t);
    this._wire();
    this._ticker = setInterval(() => this._tick(), TICK_MS);
    this._tick();
    await this._join();
  }

  /** The end: stop the tracks, close the connection, leave the stage empty. */
  stop() {
    this._stopped = true;
    clearInterval(this._ticker);
    this.peer?.stop({ tell: false });
    this.peer = null;
    if (document.fullscreenElement && this.stage.contains(document.fullscreenElement)) {
      document.exitFullscreen().catch(() => {});
    }
    this.stage.textContent = "";
    this.log.info("call.ended", {});
  }

  /** Show a warning on the stage too, where it is seen in full screen. */
  warn(text) {
    const line = this.$("[data-call-warning]");
    if (!line) return;
    line.textContent = text;
    line.hidden = false;
  }

  _embed(url) {
    const frame = document.createElement("iframe");
    frame.src = url;
    frame.title = this.t("call.stage");
    frame.allow = "camera; microphone; fullscreen; display-capture; autoplay";
    frame.className = "call-frame";
    this.stage.replaceChildren(frame);
    this.log.info("call.embedded", {});
  }

  async _join() {
    this._left = false;
    const stream = await this._media({ audio: true, video: true });
    if (this._stopped) {
      for (const track of stream?.getTracks() ?? []) track.stop();
      return;
    }
    this.$("[data-local]").srcObject = stream;
    this.peer = new PeerCall({
      client: this.client,
      iceServers: this.access.ice_servers,
      polite: this.access.polite,
      log: (event, detail) => this.log.info(event, detail),
    });
    this.peer.addEventListener("remote", () => {
      const remote = this.$("[data-remote]");
      if (remote.srcObject !== this.peer.remoteStream) remote.srcObject = this.peer.remoteStream;
    });
    this.peer.addEventListener("state", () => this._renderState());
    this.peer.addEventListener("peer", () => this._renderState());
    this.peer.addEventListener("quality", () => this._renderQuality());
    await this.peer.start(stream);
    this.log.info("call.joined", { peer_id: this.peer.peerId, media: Boolean(stream) });
    this._renderControls();
    this._renderState();
    await this._listDevices();
  }

  async _media(constraints) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      // Without a camera or a microphone the call still shows the other.
      this.$("[data-media-error]").textContent = this.t("call.media_unavailable");
      this.log.error("call.media_unavailable", { error: String(error) });
      return null;
    }
  }

  _wire() {
    this.$('[data-control="mute"]').addEventListener("click", (event) => this._toggle(event.currentTarget, "audio"));
    this.$('[data-control="camera"]').addEventListener("click", (event) => this._toggle(event.currentTarget, "video"));
    this.$('[data-control="fullscreen"]').addEventListener("click", () => this._fullscreen());
    this.$('[data-control="hangup"]').addEventListener("click", () => this._hangUp());
    this.$('[data-control="rejoin"]').addEventListener("click", () => this._join());
    for (const select of this.stage.querySelectorAll("[data-device]")) {
      select.addEventListener("change", () => this._useDevice(select.dataset.device, select.value));
    }
  }

  _toggle(button, kind) {
    const off = button.getAttribute("aria-pressed") !== "true";
    this.peer?.setEnabled(kind, !off);
    button.setAttribute("aria-pressed", String(off));
    if (kind === "audio") button.textContent = off ? this.t("call.unmute") : this.t("call.mute");
    else button.textContent = off ? this.t("call.camera_on") : this.t("call.camera_off");
    this.log.info(kind === "audio" ? "call.muted" : "call.camera", { off });
  }

  async _useDevice(kind, deviceId) {
    const constraints = kind === "videoinput" ? { video: { deviceId: { exact: deviceId } } } : { audio: { deviceId: { exact: deviceId } } };
    const stream = await this._media(constraints);
    const track = stream?.getTracks()[0];
    if (!track || !this.peer) return;
    const pressed = this.$(kind === "videoinput" ? '[data-control="camera"]' : '[data-control="mute"]');
    track.enabled = pressed.getAttribute("aria-pressed") !== "true";
    await this.peer.replaceTrack(track);
    this.$("[data-local]").srcObject = this.peer.localStream;
    this.log.info("call.device", { kind });
  }

  async _listDevices() {
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return;
    }
    const inUse = new Set((this.peer?.localStream?.getTracks() ?? []).map((track) => track.getSettings().deviceId));
    for (const select of this.stage.querySelectorAll("[data-device]")) {
      const mine = devices.filter((device) => device.kind === select.dataset.device);
      select.replaceChildren(
        ...mine.map((device, index) => {
          const option = new Option(device.label || `${select.parentElement.firstChild.textContent.trim()} ${index + 1}`, device.deviceId);
          option.selected = inUse.has(device.deviceId);
          return option;
        }),
      );
      select.disabled = mine.length < 2;
    }
  }

  _fullscreen() {
    const stage = this.$("[data-call-stage]");
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else stage.requestFullscreen?.().catch((error) => this.log.info("call.fullscreen_refused", { error: String(error) }));
  }

  _hangUp() {
    this.peer?.stop();
    this.peer = null;
    this._left = true;
    this.$("[data-remote]").srcObject = null;
    this.$("[data-local]").srcObject = null;
    this._renderControls();
    this._renderState();
    this.log.info("call.hung_up", {});
  }

  _renderControls() {
    for (const name of ["mute", "camera", "fullscreen", "hangup"]) {
      this.$(`[data-control="${name}"]`).hidden = this._left;
    }
    for (const label of this.stage.querySelectorAll(".device")) label.hidden = this._left;
    this.$('[data-control="rejoin"]').hidden = !this._left;
  }

  _renderState() {
    const notice = this.$("[data-notice]");
    if (!notice) return;
    let text = "";
    if (this._left) text = this.t("call.you_left");
    else if (!this.peer?.otherPresent) text = this.t("call.waiting_other");
    else if (this.peer.state !== "connected") text = this.t("call.connecting");
    notice.textContent = text;
    notice.hidden = !text;
    this.stage.dataset.state = this._left ? "left" : this.peer?.state ?? "new";
  }

  _renderQuality() {
    const quality = this.peer?.quality;
    const line = this.$("[data-quality]");
    line.hidden = !quality;
    if (quality) {
      const names = { good: this.t("call.quality_good"), fair: this.t("call.quality_fair"), poor: this.t("call.quality_poor") };
      line.textContent = names[quality];
      line.dataset.quality = quality;
    }
  }

  _tick() {
    const timer = this.$("[data-call-timer]");
    if (timer) timer.textContent = formatRemaining(this.client.remainingMs());
  }
}
