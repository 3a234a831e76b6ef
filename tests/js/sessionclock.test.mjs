// sessionclock.js without a browser or a network: the offset estimator, the
// countdown's text, and what SessionClient makes of the frames it receives.
//
// Run with `node --test tests/js/`; tests/test_js_client.py does so under pytest.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  CLOCK_CONNECT_EXCHANGES,
  CLOCK_DRIFT_PPM,
  CLOCK_RESYNC_EXCHANGES,
  CLOCK_RESYNC_INTERVAL_S,
  OffsetEstimator,
  SessionClient,
  formatRemaining,
  monotonicNowMs,
} from "../../src/sessionclock/web/static/sessionclock.js";

// 2026-12-03T18:00:00.000Z: the true time when every simulation starts.
const T0_MS = 1_796_320_800_000;
const MINUTE_MS = 60_000;
const SKEWS_MS = [-10 * MINUTE_MS, 0, 10 * MINUTE_MS];

// The promise: the same remaining time as the server, within 50 ms.
const TOLERANCE_MS = 50;
const OUTLIER_MS = 300;
const OUTLIER_CHANCE = 0.1;
const SEEDS = 50;

// The symmetric but jittery path: each way 20 to 80 ms, drawn independently.
const JITTER_SEEDS = 400;

/** A small seeded generator (mulberry32): the same delays on every run. */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A true clock, a client clock off by `skewMs` and running `driftPpm` fast, and
 * seeded, uneven delays. */
class Network {
  constructor(skewMs, random = seededRandom(0), driftPpm = 0) {
    this.skewMs = skewMs;
    this.random = random;
    this.driftPpm = driftPpm;
    this.trueNowMs = T0_MS;
    this.stallsLeft = 1;
  }

  clientNowMs() {
    const driftMs = ((this.trueNowMs - T0_MS) * this.driftPpm) / 1_000_000;
    return this.trueNowMs + this.skewMs + driftMs;
  }

  /** Server clock minus client clock, now. */
  trueOffsetMs() {
    return this.trueNowMs - this.clientNowMs();
  }

  delaysMs([thereLowMs, thereHighMs] = [20, 80], [backLowMs, backHighMs] = [20, 80]) {
    let thereMs = thereLowMs + (thereHighMs - thereLowMs) * this.random();
    let backMs = backLowMs + (backHighMs - backLowMs) * this.random();
    // Now and then one direction stalls (a retransmission, a busy proxy).
    if (this.stallsLeft > 0 && this.random() < OUTLIER_CHANCE) {
      this.stallsLeft -= 1;
      if (this.random() < 0.5) thereMs += OUTLIER_MS;
      else backMs += OUTLIER_MS;
    }
    return [thereMs, backMs];
  }

  /** Send at the client, stamp at the server in whole ms, receive back. */
  exchange(thereMs, backMs) {
    const t0 = this.clientNowMs();
    this.trueNowMs += thereMs;
    const serverMs = Math.floor(this.trueNowMs);
    // The true offset when the server stamped its clock: what the exchange bounds.
    const offsetAtStampMs = this.trueOffsetMs();
    this.trueNowMs += backMs;
    const t3 = this.clientNowMs();
    // The client pauses 50 ms between exchanges.
    this.trueNowMs += 50;
    return { t0, serverMs, t3, thereMs, backMs, offsetAtStampMs };
  }

  // Fewer than half of the exchanges stall. A stalled exchange bounds its slow side
  // loosely: only when every one stalls the same way does nothing bound that side
  // closely.
  sync(estimator, count) {
    this.stallsLeft = Math.floor((count - 1) / 2);
    const exchanges = [];
    for (let i = 0; i < count; i += 1) {
      const exchange = this.exchange(...this.delaysMs());
      estimator.add(exchange.t0, exchange.serverMs, exchange.t3);
      exchanges.push(exchange);
    }
    return exchanges;
  }
}

/** How far the client's remaining time to `ends_at` is from the true one. */
function remainingErrorMs(estimator, network) {
  const endsAtMs = T0_MS + 30 * MINUTE_MS;
  network.trueNowMs += 7_321.5;
  const clientRemainingMs = endsAtMs - (network.clientNowMs() + estimator.offsetMs);
  const trueRemainingMs = endsAtMs - network.trueNowMs;
  return clientRemainingMs - trueRemainingMs;
}

/** The 95th percentile of some values, the nearest rank. */
function p95(values) {
  const ordered = [...values].sort((a, b) => a - b);
  return ordered[Math.ceil(0.95 * ordered.length) - 1];
}

/** The p95 error of the remaining time after `count` exchanges over some delays. */
function remainingErrorP95Ms(count, thereRangeMs, backRangeMs) {
  const errorsMs = [];
  for (const skewMs of SKEWS_MS) {
    for (let seed = 0; seed < JITTER_SEEDS; seed += 1) {
      const network = new Network(skewMs, seededRandom(seed * 7_919 + skewMs + count));
      network.stallsLeft = 0;
      const estimator = new OffsetEstimator();
      for (let i = 0; i < count; i += 1) {
        const exchange = network.exchange(...network.delaysMs(thereRangeMs, backRangeMs));
        estimator.add(exchange.t0, exchange.serverMs, exchange.t3);
      }
      errorsMs.push(Math.abs(remainingErrorMs(estimator, network)));
    }
  }
  return p95(errorsMs);
}

// A fast path (a LAN): the intervals are narrow, so a drifted old sample can
// exclude the true offset unless its bounds are widened.
const LAN_DELAYS_MS = [0.5, 3];

/** Over 20 five-minute lobbies on the clients' schedule, how many exchanges left
 * the true offset outside the reported bound. */
function lobbyEscapes(clientDriftPpm, allowancePpm) {
  let escaped = 0;
  for (let seed = 0; seed < 20; seed += 1) {
    const network = new Network(3 * MINUTE_MS, seededRandom(seed + 31), clientDriftPpm);
    network.stallsLeft = 0;
    const estimator = new OffsetEstimator({ driftPpm: allowancePpm });
    const startedMs = network.trueNowMs;
    for (let minute = 0; minute <= 5; minute += 1) {
      const resyncAtMs = startedMs + minute * CLOCK_RESYNC_INTERVAL_S * 1000;
      network.trueNowMs = Math.max(network.trueNowMs, resyncAtMs);
      const count = minute === 0 ? CLOCK_CONNECT_EXCHANGES : CLOCK_RESYNC_EXCHANGES;
      for (let i = 0; i < count; i += 1) {
        const exchange = network.exchange(...network.delaysMs(LAN_DELAYS_MS, LAN_DELAYS_MS));
        estimator.add(exchange.t0, exchange.serverMs, exchange.t3);
        const errorMs = estimator.offsetMs - exchange.offsetAtStampMs;
        if (Math.abs(errorMs) > estimator.errorBoundMs + 1e-3) escaped += 1;
      }
    }
  }
  return escaped;
}

describe("OffsetEstimator", () => {
  test("offset empty is null", () => {
    const estimator = new OffsetEstimator();
    assert.equal(estimator.offsetMs, null);
    assert.equal(estimator.errorBoundMs, null);
    assert.equal(estimator.roundTripMs, null);
  });

  test("add reply before request throws", () => {
    const estimator = new OffsetEstimator();
    assert.throws(() => estimator.add(1_000, 5_000, 999), RangeError);
    assert.equal(estimator.offsetMs, null);
  });

  // The same samples as tests/core/test_clock_sync.py: both clients agree.
  test("add zero round trip leaves the stamp's millisecond", () => {
    const estimator = new OffsetEstimator();
    estimator.add(1_000, 601_000, 1_000);
    assert.equal(estimator.offsetMs, 600_000.5);
    assert.equal(estimator.errorBoundMs, 0.5);
    assert.equal(estimator.roundTripMs, 0);
  });

  // Tests of the intersection's arithmetic that space their samples a second or more
  // apart turn the drift allowance off; its own tests come further down.
  test("offset middle of intersection", () => {
    // The true offset is 1_000; each line says how long the way there and back took.
    const estimator = new OffsetEstimator({ driftPpm: 0 });
    estimator.add(0, 1_070, 100); // 70 there, 30 back: 970 to 1_071
    estimator.add(1_000, 2_010, 1_060); // 10 there, 50 back: 950 to 1_011
    estimator.add(2_000, 3_040, 2_080); // 40 each way: 960 to 1_041
    estimator.add(3_000, 4_200, 3_205); // 200 there, 5 back: 995 to 1_201
    // The slowest sample gives the highest low bound: it counts as much as any.
    assert.equal(estimator.offsetMs, 1_003);
    assert.equal(estimator.errorBoundMs, 8);
    assert.equal(estimator.roundTripMs, 60);
  });

  test("offset equal samples same as one", () => {
    const once = new OffsetEstimator();
    once.add(1_000, 601_040, 1_075);
    const repeated = new OffsetEstimator();
    for (let i = 0; i < 10; i += 1) repeated.add(1_000, 601_040, 1_075);
    assert.equal(once.offsetMs, 600_003);
    assert.equal(repeated.offsetMs, 600_003);
    assert.equal(once.errorBoundMs, 38);
    assert.equal(repeated.errorBoundMs, 38);
  });

  test("offset equal offsets is exact", () => {
    const estimator = new OffsetEstimator({ driftPpm: 0 });
    for (const [startMs, roundTripMs] of [[0, 37], [1_000, 52], [2_000, 41], [3_000, 66]]) {
      const middleMs = startMs + roundTripMs / 2;
      estimator.add(startMs, middleMs + 600_123.25, startMs + roundTripMs);
    }
    // Every interval, and so their intersection, is centred half a millisecond (the
    // floored stamp's) above the agreed offset.
    assert.equal(estimator.offsetMs, 600_123.75);
    assert.equal(estimator.errorBoundMs, 19);
  });

  test("add beyond keep forgets oldest", () => {
    const estimator = new OffsetEstimator({ keep: 3 });
    estimator.add(0, 6_992, 2); // 6_990 to 6_993, inside the newer bounds
    for (const startMs of [1_000, 2_000, 3_000]) {
      estimator.add(startMs, startMs + 7_050, startMs + 100); // 6_950 to 7_051
    }
    assert.equal(estimator.samples.length, 3);
    assert.equal(estimator.offsetMs, 7_000.5);
    assert.equal(estimator.errorBoundMs, 50.5);
    assert.equal(estimator.roundTripMs, 100);
  });

  test("offset after server clock step follows newest", () => {
    const estimator = new OffsetEstimator({ driftPpm: 0 });
    for (const startMs of [0, 1_000, 2_000, 3_000, 4_000]) {
      estimator.add(startMs, startMs + 5_020, startMs + 40); // 4_980 to 5_021
    }
    // The server's clock steps 2 s ahead; these take 20 to 40 ms each way.
    estimator.add(5_000, 12_020, 5_060); // 6_960 to 7_021
    estimator.add(6_000, 13_040, 6_060); // 6_980 to 7_041
    estimator.add(7_000, 14_035, 7_060); // 6_975 to 7_036
    assert.equal(estimator.samples.length, 8);
    assert.equal(estimator.offsetMs, 7_000.5);
    assert.equal(estimator.errorBoundMs, 20.5);
  });

  test("offset wrong sample leaves the newer ones", () => {
    const estimator = new OffsetEstimator();
    estimator.add(0, 1_010, 20); // 990 to 1_011: would narrow the estimate
    estimator.add(1_000, 9_000, 1_020); // 7_980 to 8_001: a wrong stamp
    estimator.add(2_000, 3_030, 2_060); // 970 to 1_031
    estimator.add(3_000, 4_020, 3_050); // 970 to 1_021
    assert.equal(estimator.offsetMs, 995.5);
    assert.equal(estimator.errorBoundMs, 25.5);
  });

  for (const skewMs of SKEWS_MS) {
    for (const count of [5, 10]) {
      test(`remaining skewed ${skewMs} ms after ${count} exchanges matches server`, () => {
        for (let seed = 0; seed < SEEDS; seed += 1) {
          const network = new Network(skewMs, seededRandom(seed * 1_000 + count + skewMs));
          const estimator = new OffsetEstimator();
          const exchanges = network.sync(estimator, count);
          const errorMs = remainingErrorMs(estimator, network);
          assert.ok(
            Math.abs(errorMs) < TOLERANCE_MS,
            `seed ${seed}: off by ${errorMs} ms after ${JSON.stringify(exchanges)}`,
          );
        }
      });
    }

    test(`remaining skewed ${skewMs} ms with stalled exchanges matches server`, () => {
      const network = new Network(skewMs);
      const estimator = new OffsetEstimator();
      for (const [thereMs, backMs] of [[40, 60], [350, 30], [25, 70], [30, 330], [80, 20]]) {
        const exchange = network.exchange(thereMs, backMs);
        estimator.add(exchange.t0, exchange.serverMs, exchange.t3);
      }
      assert.ok(Math.abs(remainingErrorMs(estimator, network)) < TOLERANCE_MS);
    });

    test(`remaining skewed ${skewMs} ms opposite asymmetries cancel`, () => {
      // Round trips of 60 ms, 38 ms there and 22 back or the other way round, then
      // five slower ones all 70 ms there and 30 back, which a mean would follow.
      const network = new Network(skewMs);
      const estimator = new OffsetEstimator({ driftPpm: 0 });
      const fastMs = [[38, 22], [22, 38], [37, 23], [23, 37], [36, 24]];
      const slowMs = Array(5).fill([70, 30]);
      for (const [thereMs, backMs] of [...fastMs, ...slowMs]) {
        const exchange = network.exchange(thereMs, backMs);
        estimator.add(exchange.t0, exchange.serverMs, exchange.t3);
      }
      // From 22 ms below to 22 ms plus the stamp's millisecond above the offset.
      assert.equal(estimator.offsetMs, -skewMs + 0.5);
      assert.equal(estimator.errorBoundMs, 22.5);
      assert.ok(Math.abs(remainingErrorMs(estimator, network) + 0.5) < 1e-3);
    });
  }

  // The intersection's p95 on these seeds is 13.1, 7.4 and 4.0 ms; the weighted mean
  // of the faster half, which it replaced, had 13.5 and 9.6 ms after 5 and 10. After
  // the 20 exchanges a client makes when it connects, the goal (5 ms) holds.
  for (const [count, limitMs] of [[5, 14], [10, 8.5], [CLOCK_CONNECT_EXCHANGES, 5]]) {
    test(`remaining symmetric jitter after ${count} exchanges p95 within ${limitMs} ms`, () => {
      const p95Ms = remainingErrorP95Ms(count, [20, 80], [20, 80]);
      assert.ok(p95Ms <= limitMs, `p95 ${p95Ms} ms`);
    });
  }

  test("remaining asymmetric path after 10 exchanges p95 within goal", () => {
    // 20 to 40 ms there, 40 to 80 back: the goal is 5 ms plus half the asymmetry.
    const p95Ms = remainingErrorP95Ms(10, [20, 40], [40, 80]);
    assert.ok(p95Ms <= 5 + 15, `p95 ${p95Ms} ms`);
  });

  test("offset true within error bound", () => {
    // A sub-millisecond phase makes the server's floored stamp lose something, which
    // the bound must allow for, and the client's clock drifts within the allowance.
    // 1e-3 ms leaves room for rounding: epoch milliseconds as doubles are exact to
    // about 0.0002 ms.
    const random = seededRandom(99);
    for (let trial = 0; trial < 300; trial += 1) {
      const skewMs = Math.round((random() * 2 - 1) * 10 * MINUTE_MS);
      const driftPpm = (random() * 2 - 1) * CLOCK_DRIFT_PPM;
      const network = new Network(skewMs, seededRandom(trial), driftPpm);
      network.trueNowMs += random();
      const estimator = new OffsetEstimator();
      const count = 1 + Math.floor(random() * 15);
      const exchanges = [];
      for (let i = 0; i < count; i += 1) {
        const thereMs = Math.floor(random() * 501);
        const backMs = Math.floor(random() * 501);
        const exchange = network.exchange(thereMs, backMs);
        estimator.add(exchange.t0, exchange.serverMs, exchange.t3);
        exchanges.push(exchange);
      }
      // A sample alone bounds the error by half its round trip and the stamp's
      // millisecond, an older one widened by the drift allowed since it was sent.
      const newest = exchanges[exchanges.length - 1];
      const ownBoundsMs = exchanges.map(
        (exchange) =>
          (exchange.t3 - exchange.t0 + 1) / 2 +
          (exchange === newest ? 0 : ((newest.t3 - exchange.t0) * CLOCK_DRIFT_PPM) / 1_000_000),
      );
      const context = `trial ${trial}: offset ${estimator.offsetMs}, skew ${skewMs}`;
      assert.ok(estimator.errorBoundMs <= Math.min(...ownBoundsMs) + 1e-3, context);
      assert.ok(
        Math.abs(estimator.offsetMs - newest.offsetAtStampMs) <= estimator.errorBoundMs + 1e-3,
        `${context}, bound ${estimator.errorBoundMs}`,
      );
    }
  });

  test("error bound holds for the offset at the server's stamp", () => {
    // A slow clock, a stamp just under a whole millisecond and a long way back: the
    // offset moves 0.025 ms between the stamp and the reply, past what the bound
    // promises, which is the offset at the stamp.
    const network = new Network(0, seededRandom(0), -50);
    network.trueNowMs += 0.999;
    const estimator = new OffsetEstimator();
    const exchange = network.exchange(0, 500);
    estimator.add(exchange.t0, exchange.serverMs, exchange.t3);
    const errorMs = Math.abs(estimator.offsetMs - exchange.offsetAtStampMs);
    assert.ok(errorMs <= estimator.errorBoundMs + 1e-3, `${errorMs} > ${estimator.errorBoundMs}`);
  });

  test("add older sample widened by drift since", () => {
    const widened = new OffsetEstimator({ driftPpm: 25 });
    const strict = new OffsetEstimator({ driftPpm: 0 });
    for (const estimator of [widened, strict]) {
      estimator.add(0, 1_010, 20); // 990 to 1_011
      estimator.add(599_940, 600_985, 600_000); // ten minutes on: 985 to 1_046
    }
    // 25 ppm of the 600_000 ms since the first was sent: 15 ms on either side.
    assert.equal(widened.offsetMs, 1_005.5);
    assert.equal(widened.errorBoundMs, 20.5);
    assert.equal(strict.offsetMs, 1_000.5);
    assert.equal(strict.errorBoundMs, 10.5);
  });

  test("refuses a negative drift allowance", () => {
    assert.throws(() => new OffsetEstimator({ driftPpm: -1 }), RangeError);
  });

  for (const clientDriftPpm of [-45, 20, 45]) {
    test(`lobby client drifting ${clientDriftPpm} ppm stays within error bound`, () => {
      assert.equal(lobbyEscapes(clientDriftPpm, CLOCK_DRIFT_PPM), 0);
    });

    test(`lobby client drifting ${clientDriftPpm} ppm without allowance leaves bound`, () => {
      assert.ok(lobbyEscapes(clientDriftPpm, 0) > 0);
    });
  }

  test("refuses to keep no sample", () => {
    assert.throws(() => new OffsetEstimator({ keep: 0 }), RangeError);
    assert.throws(() => new OffsetEstimator({ keep: -1 }), RangeError);
  });
});

describe("formatRemaining", () => {
  const cases = [
    [0, "0:00"],
    [1, "0:01"],
    [59_000, "0:59"],
    [59_001, "1:00"],
    [61_000, "1:01"],
    [3_599_000, "59:59"],
    [3_599_001, "1:00:00"],
    [3_600_000, "1:00:00"],
    [3_661_000, "1:01:01"],
    [36_000_000, "10:00:00"],
    [-1, "0:00"],
    [-90_000, "0:00"],
  ];
  for (const [remainingMs, expected] of cases) {
    test(`format ${remainingMs} ms is ${expected}`, () => {
      assert.equal(formatRemaining(remainingMs), expected);
    });
  }
});

describe("monotonicNowMs", () => {
  test("reading ignores Date.now and never goes back", (t) => {
    const first = monotonicNowMs();
    t.mock.method(Date, "now", () => 0);
    const second = monotonicNowMs();
    assert.ok(second >= first);
    assert.ok(second > T0_MS - 10 * 365 * 24 * 3_600_000, "an epoch reading in ms");
  });
});

const SESSION_ID = "b-1042";
const TOKEN = "participant-token";
const BASE_URL = "https://clock.example";
// 2026-12-03T19:00:00.000Z and 19:30: the booked start and end.
const STARTS_AT_MS = T0_MS + 60 * MINUTE_MS;
const ENDS_AT_MS = STARTS_AT_MS + 30 * MINUTE_MS;

function session(version, overrides = {}) {
  return {
    id: SESSION_ID,
    status: "waiting",
    booking_status: "confirmed",
    starts_at: new Date(STARTS_AT_MS).toISOString(),
    ends_at: new Date(ENDS_AT_MS).toISOString(),
    lobby_opens_at: new Date(STARTS_AT_MS - 5 * MINUTE_MS).toISOString(),
    participants: {
      client: { user_id: "u-7", ready: false, ready_at: null, online: false },
      companion: { user_id: "u-9", ready: false, ready_at: null, online: false },
    },
    expired_reason: null,
    version,
    server_time: new Date(T0_MS).toISOString(),
    ...overrides,
  };
}

/** A client whose monotonic clock is whatever the test sets `clock.nowMs` to. */
function fakeClient(clock) {
  return new SessionClient({
    sessionId: SESSION_ID,
    token: TOKEN,
    baseUrl: `${BASE_URL}/`,
    now: () => clock.nowMs,
  });
}

function countEvents(client, type) {
  const seen = { count: 0 };
  client.addEventListener(type, () => {
    seen.count += 1;
  });
  return seen;
}

/** Answer `time` frames over a network whose client clock is off by `skewMs`. */
function syncOverFrames(client, clock, network, count) {
  for (let i = 0; i < count; i += 1) {
    const [thereMs, backMs] = network.delaysMs();
    clock.nowMs = network.clientNowMs();
    const t0 = client.now();
    network.trueNowMs += thereMs;
    const serverMs = Math.floor(network.trueNowMs);
    network.trueNowMs += backMs;
    clock.nowMs = network.clientNowMs();
    client._receive({ type: "time", t0, server_time_ms: serverMs });
    network.trueNowMs += 50;
  }
}

function jsonResponse(body, status = 200) {
  return { ok: status < 400, status, json: async () => body };
}

describe("SessionClient", () => {
  test("snapshot frame sets snapshot and emits", () => {
    const client = fakeClient({ nowMs: T0_MS });
    const events = countEvents(client, "snapshot");
    client._receive({ type: "snapshot", session: session(1) });
    assert.deepEqual(client.snapshot, session(1));
    assert.equal(events.count, 1);
  });

  test("snapshot older version is dropped", () => {
    const client = fakeClient({ nowMs: T0_MS });
    client._receive({ type: "snapshot", session: session(4, { status: "lobby" }) });
    const events = countEvents(client, "snapshot");
    client._receive({ type: "snapshot", session: session(3, { status: "waiting" }) });
    assert.equal(client.snapshot.version, 4);
    assert.equal(client.snapshot.status, "lobby");
    assert.equal(events.count, 0);
  });

  test("snapshot same or newer version is applied", () => {
    const client = fakeClient({ nowMs: T0_MS });
    client._receive({ type: "snapshot", session: session(4) });
    const events = countEvents(client, "snapshot");
    const again = session(4);
    again.participants.client.online = true;
    client._receive({ type: "snapshot", session: again });
    assert.equal(client.snapshot.participants.client.online, true);
    client._receive({ type: "snapshot", session: session(5, { status: "lobby" }) });
    assert.equal(client.snapshot.version, 5);
    assert.equal(client.snapshot.status, "lobby");
    assert.equal(events.count, 2);
  });

  test("presence frame updates online and emits snapshot", () => {
    const client = fakeClient({ nowMs: T0_MS });
    client._receive({ type: "snapshot", session: session(2) });
    const events = countEvents(client, "snapshot");
    client._receive({ type: "presence", online: { client: true, companion: false } });
    assert.equal(client.snapshot.participants.client.online, true);
    assert.equal(client.snapshot.participants.companion.online, false);
    client._receive({ type: "presence", online: { client: false, companion: true } });
    assert.equal(client.snapshot.participants.client.online, false);
    assert.equal(client.snapshot.participants.companion.online, true);
    assert.equal(client.snapshot.version, 2);
    assert.equal(events.count, 2);
  });

  test("presence frame unknown role or no snapshot is ignored", () => {
    const client = fakeClient({ nowMs: T0_MS });
    client._receive({ type: "presence", online: { client: true } });
    assert.equal(client.snapshot, null);
    client._receive({ type: "snapshot", session: session(2) });
    client._receive({ type: "presence", online: { observer: true } });
    assert.deepEqual(Object.keys(client.snapshot.participants), ["client", "companion"]);
  });

  test("remaining no snapshot is zero", () => {
    const client = fakeClient({ nowMs: T0_MS });
    assert.equal(client.remainingMs(), 0);
    assert.equal(client.offsetMs, 0);
  });

  for (const skewMs of SKEWS_MS) {
    test(`remaining skewed ${skewMs} ms counts to start then to end`, () => {
      const clock = { nowMs: T0_MS + skewMs };
      const client = fakeClient(clock);
      const network = new Network(skewMs, seededRandom(42));
      syncOverFrames(client, clock, network, 5);
      client._receive({ type: "snapshot", session: session(3) });

      // Ninety seconds before the start (true time), the count is to the start.
      network.trueNowMs = STARTS_AT_MS - 90_000;
      clock.nowMs = network.clientNowMs();
      assert.ok(Math.abs(client.remainingMs() - 90_000) < TOLERANCE_MS, `${client.remainingMs()}`);

      // Ten minutes after the start, it is to the end.
      network.trueNowMs = STARTS_AT_MS + 10 * MINUTE_MS;
      clock.nowMs = network.clientNowMs();
      const expectedMs = 20 * MINUTE_MS;
      assert.ok(Math.abs(client.remainingMs() - expectedMs) < TOLERANCE_MS, `${client.remainingMs()}`);

      // After the end nothing is left.
      network.trueNowMs = ENDS_AT_MS + 1_000;
      clock.nowMs = network.clientNowMs();
      assert.equal(client.remainingMs(), 0);
    });
  }

  test("remaining ignores Date.now and follows injected now", (t) => {
    const clock = { nowMs: T0_MS - 10 * MINUTE_MS };
    const client = fakeClient(clock);
    syncOverFrames(client, clock, new Network(-10 * MINUTE_MS, seededRandom(5)), 5);
    client._receive({ type: "snapshot", session: session(1) });
    const before = client.remainingMs();

    t.mock.method(Date, "now", () => T0_MS + 24 * 60 * MINUTE_MS);
    assert.equal(client.remainingMs(), before);

    clock.nowMs += 1_000;
    assert.equal(client.remainingMs(), before - 1_000);
  });

  test("warning frame newer version refetches with token", async (t) => {
    const calls = [];
    t.mock.method(globalThis, "fetch", async (url, options) => {
      calls.push({ url, options });
      return jsonResponse(session(6, { status: "lobby" }));
    });
    const client = fakeClient({ nowMs: T0_MS });
    client._receive({ type: "snapshot", session: session(4) });
    const warnings = countEvents(client, "warning");
    const refetched = new Promise((resolve) => {
      client.addEventListener("snapshot", resolve, { once: true });
    });

    client._receive({ type: "warning", remaining_s: 300, version: 6 });
    await refetched;

    assert.equal(warnings.count, 1);
    assert.deepEqual(client.lastWarning, { remaining_s: 300 });
    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, `${BASE_URL}/api/sessions/${SESSION_ID}`);
    assert.equal(calls[0].options.headers.Authorization, `Bearer ${TOKEN}`);
    assert.equal(client.snapshot.version, 6);
    assert.equal(client.snapshot.status, "lobby");
  });

  test("warning frame same or older version does not refetch", async (t) => {
    const fetch = t.mock.method(globalThis, "fetch", async () => jsonResponse(session(9)));
    const client = fakeClient({ nowMs: T0_MS });
    client._receive({ type: "snapshot", session: session(4) });
    client._receive({ type: "warning", remaining_s: 300, version: 4 });
    client._receive({ type: "warning", remaining_s: 60, version: 3 });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fetch.mock.callCount(), 0);
    assert.deepEqual(client.lastWarning, { remaining_s: 60 });
    assert.equal(client.snapshot.version, 4);
  });

  test("error frame records failure and emits", () => {
    const client = fakeClient({ nowMs: T0_MS });
    const failures = countEvents(client, "failure");
    client._receive({ type: "error", detail: "expected a valid token", status: 401 });
    assert.deepEqual(client.lastError, { detail: "expected a valid token", status: 401 });
    assert.equal(failures.count, 1);
  });

  test("sync clock over http estimates skewed offset", async (t) => {
    const skewMs = 10 * MINUTE_MS;
    const network = new Network(skewMs, seededRandom(8));
    const clock = { nowMs: network.clientNowMs() };
    const urls = [];
    t.mock.method(globalThis, "fetch", async (url, options) => {
      urls.push([url, options.headers.Authorization]);
      const [thereMs, backMs] = network.delaysMs();
      network.trueNowMs += thereMs;
      const serverMs = Math.floor(network.trueNowMs);
      network.trueNowMs += backMs;
      clock.nowMs = network.clientNowMs();
      return jsonResponse({ server_time: new Date(serverMs).toISOString(), server_time_ms: serverMs });
    });
    const client = fakeClient(clock);
    const clockEvents = countEvents(client, "clock");

    await client.syncClock(3);

    assert.equal(clockEvents.count, 1);
    assert.deepEqual(urls, Array(3).fill([`${BASE_URL}/api/time`, `Bearer ${TOKEN}`]));
    assert.ok(Math.abs(client.offsetMs + skewMs) < TOLERANCE_MS, `${client.offsetMs}`);
  });

  test("sync clock during a run joins it", async (t) => {
    const fetch = t.mock.method(globalThis, "fetch", async () =>
      jsonResponse({ server_time_ms: T0_MS }),
    );
    const client = fakeClient({ nowMs: T0_MS });
    const clockEvents = countEvents(client, "clock");

    const first = client.syncClock(3);
    const second = client.syncClock();
    await Promise.all([first, second]);

    assert.equal(second, first);
    assert.equal(fetch.mock.callCount(), 3);
    assert.equal(clockEvents.count, 1);

    // Once it is over, the next call runs again, the resync's exchanges.
    await client.syncClock();
    assert.equal(fetch.mock.callCount(), 3 + CLOCK_RESYNC_EXCHANGES);
  });

  test("start without push runs the connect exchanges, then polls", async (t) => {
    // Node has no EventSource (and Node 20 no WebSocket): the client falls back
    // to polling, which estimates the clock from its first burst of exchanges.
    const urls = [];
    t.mock.method(globalThis, "fetch", async (url) => {
      urls.push(url);
      if (url.endsWith("/api/time")) return jsonResponse({ server_time_ms: T0_MS });
      return jsonResponse({ ...session(1), server_time_ms: T0_MS });
    });
    const client = fakeClient({ nowMs: T0_MS });
    const synced = new Promise((resolve) => {
      client.addEventListener("clock", resolve, { once: true });
    });
    const { WebSocket } = globalThis;
    delete globalThis.WebSocket;
    t.after(() => {
      if (WebSocket !== undefined) globalThis.WebSocket = WebSocket;
    });

    client.start();
    await synced;
    client.stop();

    const timeCalls = urls.filter((url) => url.endsWith("/api/time"));
    assert.equal(timeCalls.length, CLOCK_CONNECT_EXCHANGES);
    assert.equal(client.transport, "closed");
  });
});
