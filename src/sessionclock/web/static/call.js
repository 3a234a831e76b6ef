// call.js: the built-in 1:1 call, browser WebRTC signalled over the session's socket.
//
//   import { PeerCall } from "/static/call.js";
//   const call = new PeerCall({ client, iceServers, polite });  // client: SessionClient
//   call.addEventListener("remote", () => (video.srcObject = call.remoteStream));
//   await call.start(localStream);   // joins; stop() leaves and closes everything
//
// Negotiation follows the "perfect negotiation" pattern: both sides may offer at
// any time; when two offers cross, the polite side (the client) rolls its own back
// and answers, the impolite side (the companion) ignores the other's. Every page
// load is a new peer with its own `peerId`, and an RTCPeerConnection belongs to
// one pair of peers: it is made when the other peer becomes known (its join, or
// its first signal to us) and replaced only when another peer takes its place (a
// reload, another device, a rejoin after hanging up). Each signal names the peer
// it is for, so that what was meant for an earlier page is dropped. When a socket
// comes back after a network loss, its side joins again as the same peer and the
// ICE connection is restarted instead.
//
// Events (plain `Event`s; read the state from the call): `remote` (remoteStream
// has new tracks), `state` (connectionState changed), `peer` (otherPresent
// changed), `quality` (quality changed: "good", "fair", "poor" or null).

const QUALITY_EVERY_MS = 2000;
const RESTART_AFTER_MS = 4000;

function randomId() {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, (c) => ({ "+": "-", "/": "_", "=": "" })[c]);
}

export class PeerCall extends EventTarget {
  constructor({ client, iceServers = [], polite = false, log = () => {} }) {
    super();
    this.client = client;
    this.iceServers = iceServers;
    this.polite = polite;
    this.log = log;
    this.peerId = randomId();
    this.localStream = null;
    this.remoteStream = new MediaStream();
    this.pc = null;
    this.state = "new";
    this.quality = null;
    this.otherPresent = false;
    this._otherPeerId = null;
    this._retired = new Set();
    this._makingOffer = false;
    this._ignoreOffer = false;
    this._stopped = true;
    this._statsTimer = null;
    this._restartTimer = null;
    this._lastInbound = null;
    this._onCall = (event) => this._onMembership(event.detail);
    this._onSignal = (event) => this._onSignalFrame(event.detail);
    this._onTransport = () => {
      // The socket is back after a loss: say again that we are here, as ourselves.
      if (this.client.transport === "websocket" && !this._stopped) this._join();
    };
  }

  /** Join the call with `localStream` (may be null: receive only). */
  async start(localStream) {
    this._stopped = false;
    this.localStream = localStream;
    this.client.addEventListener("call", this._onCall);
    this.client.addEventListener("signal", this._onSignal);
    this.client.addEventListener("transport", this._onTransport);
    this._join();
    this._statsTimer = setInterval(() => this._measure(), QUALITY_EVERY_MS);
  }

  /** Leave the call: tell the server, close the connection, stop our tracks. */
  stop({ tell = true } = {}) {
    if (this._stopped) return;
    this._stopped = true;
    if (tell) this.client.send({ type: "call", action: "leave" });
    this.client.removeEventListener("call", this._onCall);
    this.client.removeEventListener("signal", this._onSignal);
    this.client.removeEventListener("transport", this._onTransport);
    clearInterval(this._statsTimer);
    clearTimeout(this._restartTimer);
    this.pc?.close();
    this.pc = null;
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    for (const track of this.remoteStream.getTracks()) track.stop();
    this._setState("closed");
  }

  /** Swap the camera or the microphone without renegotiating. */
  async replaceTrack(track) {
    const old = this.localStream?.getTracks().find((t) => t.kind === track.kind);
    if (old) {
      this.localStream.removeTrack(old);
      old.stop();
    }
    this.localStream?.addTrack(track);
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === track.kind || (!s.track && this._senderKind(s) === track.kind));
    if (sender) await sender.replaceTrack(track);
    else if (this.pc && this.localStream) this.pc.addTrack(track, this.localStream);
  }

  /** Whether audio or video of ours is sent: muting keeps the track, sends silence. */
  setEnabled(kind, enabled) {
    for (const track of this.localStream?.getTracks() ?? []) {
      if (track.kind === kind) track.enabled = enabled;
    }
  }

  _senderKind(sender) {
    const transceiver = this.pc.getTransceivers().find((t) => t.sender === sender);
    return transceiver?.receiver.track?.kind;
  }

  _join() {
    this.client.send({ type: "call", action: "join", peer_id: this.peerId });
  }

  _send(data) {
    this.client.send({ type: "signal", data: { ...data, to: this._otherPeerId } });
  }

  /** From now on this side talks to `peerId`, on a connection of their own. */
  _bind(peerId) {
    this.log("call.peer_bound", { other: peerId, previous: this._otherPeerId });
    if (this._otherPeerId) this._retired.add(this._otherPeerId);
    this._otherPeerId = peerId;
    this._newConnection();
  }

  _unbind() {
    if (this._otherPeerId) this._retired.add(this._otherPeerId);
    this._otherPeerId = null;
    this.pc?.close();
    this.pc = null;
    for (const track of this.remoteStream.getTracks()) this.remoteStream.removeTrack(track);
    this._setState("new");
  }

  _newConnection() {
    if (this.pc) {
      this.pc.onnegotiationneeded = this.pc.onicecandidate = this.pc.ontrack = null;
      this.pc.onconnectionstatechange = this.pc.oniceconnectionstatechange = null;
      this.pc.onsignalingstatechange = null;
      this.pc.close();
    }
    for (const track of this.remoteStream.getTracks()) this.remoteStream.removeTrack(track);
    this._makingOffer = false;
    this._ignoreOffer = false;
    this._lastInbound = null;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;

    pc.onnegotiationneeded = async () => {
      try {
        this._makingOffer = true;
        await pc.setLocalDescription();
        // A connection replaced meanwhile sends nothing: its offer is void.
        if (pc !== this.pc) return;
        this.log("call.offer_sent", { type: pc.localDescription.type });
        this._send({ description: pc.localDescription.toJSON() });
      } catch (error) {
        if (pc === this.pc) this.log("call.offer_failed", { error: String(error) });
      } finally {
        if (pc === this.pc) this._makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return;
      this.log("call.candidate", { type: candidate.type, protocol: candidate.protocol });
      this._send({ candidate: candidate.toJSON() });
    };
    pc.ontrack = ({ track }) => {
      this.remoteStream.addTrack(track);
      this.dispatchEvent(new Event("remote"));
    };
    pc.onconnectionstatechange = () => this._onConnectionState(pc);
    pc.oniceconnectionstatechange = () => {
      this.log("call.ice_state", { state: pc.iceConnectionState });
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
    pc.onsignalingstatechange = () => this.log("call.signaling_state", { state: pc.signalingState });

    const tracks = this.localStream?.getTracks() ?? [];
    for (const track of tracks) pc.addTrack(track, this.localStream);
    // Without a camera or a microphone, still receive the other's.
    for (const kind of ["audio", "video"]) {
      if (!tracks.some((track) => track.kind === kind)) pc.addTransceiver(kind, { direction: "recvonly" });
    }
    this._setState(pc.connectionState);
  }

  _onConnectionState(pc) {
    if (pc !== this.pc) return;
    const state = pc.connectionState;
    this._setState(state);
    if (state === "connected") {
      clearTimeout(this._restartTimer);
      this.client.send({ type: "call", action: "media", state: "connected" });
    } else if (state === "disconnected" || state === "failed") {
      this.client.send({ type: "call", action: "media", state: "lost" });
      // A short loss heals itself; a longer one needs new candidates.
      clearTimeout(this._restartTimer);
      this._restartTimer = setTimeout(() => {
        if (this.pc === pc && pc.connectionState !== "connected") pc.restartIce();
      }, state === "failed" ? 0 : RESTART_AFTER_MS);
    }
  }

  _onMembership(message) {
    if (message.action === "join") {
      this._retired.delete(message.peer_id);
      this._setOtherPresent(true);
      if (message.peer_id === this._otherPeerId) {
        // The same peer lost its socket and is back: the same call, and new
        // candidates unless its media never stopped.
        if (this.pc && this.pc.connectionState !== "connected") this.pc.restartIce();
        return;
      }
      // A new peer (the first join, a reload, a rejoin): a connection for it.
      this._bind(message.peer_id);
    } else if (message.action === "leave") {
      this._setOtherPresent(false);
      // A lost socket is not a hang-up: the media may still flow, and the peer
      // comes back as itself.
      if (message.reason === "hung up" && message.peer_id === this._otherPeerId) this._unbind();
    }
  }

  async _onSignalFrame(message) {
    const { peer_id: from, data } = message;
    if (this._retired.has(from)) return;
    // Meant for an earlier page of ours (before a reload): not for this one.
    if (data.to && data.to !== this.peerId) return;
    if (from !== this._otherPeerId) {
      // We did not hear this peer join (we joined after it): its offer is how
      // we meet it.
      this._bind(from);
      this._setOtherPresent(true);
    }
    let pc = this.pc;
    try {
      if (data.description) {
        const description = data.description;
        const collision = description.type === "offer" && (this._makingOffer || pc.signalingState !== "stable");
        this._ignoreOffer = !this.polite && collision;
        this.log("call.description", { type: description.type, collision, ignored: this._ignoreOffer });
        if (this._ignoreOffer) return;
        if (collision && !pc.remoteDescription) {
          // Two first offers crossed. Chromium was seen to gather no candidates
          // at all after rolling back a first offer, even on an ICE restart: a
          // connection that has never negotiated is cheaper to make anew.
          this._newConnection();
          pc = this.pc;
        }
        await pc.setRemoteDescription(description);
        if (description.type === "offer") {
          await pc.setLocalDescription();
          if (pc === this.pc) this._send({ description: pc.localDescription.toJSON() });
        }
      } else if (data.candidate) {
        try {
          await pc.addIceCandidate(data.candidate);
        } catch (error) {
          if (!this._ignoreOffer) throw error;
        }
      }
    } catch (error) {
      if (pc === this.pc) this.log("call.signal_failed", { error: String(error) });
    }
  }

  async _measure() {
    const pc = this.pc;
    if (!pc || pc.connectionState !== "connected") return this._setQuality(null);
    const stats = await pc.getStats();
    let roundTripS = null;
    let received = 0;
    let lost = 0;
    for (const report of stats.values()) {
      if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") {
        roundTripS = report.currentRoundTripTime ?? roundTripS;
      }
      if (report.type === "inbound-rtp") {
        received += report.packetsReceived ?? 0;
        lost += report.packetsLost ?? 0;
      }
    }
    // Loss over the last interval, not since the start.
    const previous = this._lastInbound ?? { received: 0, lost: 0 };
    this._lastInbound = { received, lost };
    const newReceived = received - previous.received;
    const newLost = Math.max(0, lost - previous.lost);
    const lossRatio = newReceived + newLost > 0 ? newLost / (newReceived + newLost) : 0;
    let quality = "good";
    if (lossRatio > 0.08 || (roundTripS ?? 0) > 0.5) quality = "poor";
    else if (lossRatio > 0.02 || (roundTripS ?? 0) > 0.25) quality = "fair";
    this._setQuality(quality);
  }

  _setQuality(quality) {
    if (quality === this.quality) return;
    this.quality = quality;
    this.dispatchEvent(new Event("quality"));
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new Event("state"));
  }

  _setOtherPresent(present) {
    if (present === this.otherPresent) return;
    this.otherPresent = present;
    this.dispatchEvent(new Event("peer"));
  }
}
