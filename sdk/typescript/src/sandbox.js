// Deterministic stand-ins for what JavaScript reads from the world, installed inside the
// component only: Math.random and crypto.getRandomValues draw from a generator seeded per
// command (entity id and ctx) and per event (entity id and stream position), and the clock
// (Date.now, new Date(), performance.now) reads the time of the command being decided.
// The component imports no WASI at all (componentize-js features all disabled), so these
// are the only sources: the same replay gives the same numbers and the same dates.

function hash128(text) {
  // cyrb128: a fast 128-bit string hash, enough to spread seeds over the generator's state.
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  return [(h1 ^ h2 ^ h3 ^ h4) >>> 0, (h2 ^ h1) >>> 0, (h3 ^ h1) >>> 0, (h4 ^ h1) >>> 0];
}

/** sfc32 over a seed text: the same text always gives the same sequence. */
export class SeededRandom {
  constructor(seed = "") {
    this.seed(seed);
  }

  seed(text) {
    [this.a, this.b, this.c, this.d] = hash128(text);
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32() {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 53 random bits, like Math.random. */
  next() {
    return (this.nextUint32() * 2 ** 21 + (this.nextUint32() >>> 11)) / 2 ** 53;
  }
}

const generator = new SeededRandom("thalo");
// What the next draw seeds from, and the time the clock reads (ISO text, parsed when
// first read): set per command and per event, used lazily, so the many calls that
// never draw or read the clock pay two stores instead of a hash and a date parse.
let pendingKind = null;
let pendingId = "";
let pendingTail = "";
let timeText = null;
let nowMs = 0;

function draw() {
  if (pendingKind !== null) {
    generator.seed(`${pendingKind}\0${pendingId}\0${pendingTail}`);
    pendingKind = null;
  }
  return generator;
}

function now() {
  if (timeText !== null) {
    const ms = Date.parse(timeText);
    nowMs = Number.isNaN(ms) ? 0 : ms;
    timeText = null;
  }
  return nowMs;
}

/** Called before each command ("handle", entity id, ctx text) and each applied event
 * ("apply", entity id, stream position): the next draw reseeds from them, and the clock
 * reads `time` (an ISO 8601 text; epoch 0 without one). */
export function reseed(kind, id, tail, time) {
  pendingKind = kind;
  pendingId = id;
  pendingTail = tail;
  timeText = typeof time === "string" ? time : null;
  nowMs = 0;
}

/** Replaces the global sources of randomness and time with the deterministic ones. */
export function installSandbox() {
  Math.random = () => draw().next();
  const cryptoObject = globalThis.crypto;
  if (cryptoObject !== undefined) {
    const fill = (array) => {
      const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
      const source = draw();
      for (let i = 0; i < bytes.length; i++) bytes[i] = source.nextUint32() & 0xff;
      return array;
    };
    try {
      Object.defineProperty(cryptoObject, "getRandomValues", { value: fill, configurable: true, writable: true });
      Object.defineProperty(cryptoObject, "randomUUID", {
        value: () => {
          const b = fill(new Uint8Array(16));
          b[6] = (b[6] & 0x0f) | 0x40;
          b[8] = (b[8] & 0x3f) | 0x80;
          const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
          return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
        },
        configurable: true,
        writable: true,
      });
    } catch {
      globalThis.crypto = undefined;
    }
  }
  const RealDate = Date;
  class GuestDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(now());
      else super(...args);
    }
    static now() {
      return now();
    }
  }
  globalThis.Date = GuestDate;
  if (globalThis.performance !== undefined) {
    try {
      Object.defineProperty(globalThis.performance, "now", { value: () => 0, configurable: true });
    } catch {
      globalThis.performance = undefined;
    }
  }
}
