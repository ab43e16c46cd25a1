// The context of one command: where it came from and when, as the runtime saw it.
import { Ignore } from "./errors.js";

/** Message id, stream name, positions, metadata and time of the command being handled.
 * Treat it as read-only. `time` is parsed when first read (most handlers never do). */
export class Context {
  constructor({ streamName, messageId = null, position = null, globalPosition = null, metadata = null, time = null }) {
    this.streamName = streamName;
    this.messageId = messageId;
    this.position = position;
    this.globalPosition = globalPosition;
    this.metadata = metadata ?? {};
    this._time = time;
    this._timeText = null;
  }

  /** When the command was issued (ctx.time), or null. */
  get time() {
    if (this._timeText !== null) {
      this._time = parseTime(this._timeText);
      this._timeText = null;
    }
    return this._time;
  }

  /** Reads the ctx JSON object of the WIT contract; throws TypeError naming a bad field. */
  static fromJson(data) {
    const { streamName, messageId, position, globalPosition, metadata, time } = data;
    if (typeof streamName !== "string") throw new TypeError("ctx.streamName must be a string");
    if (messageId != null && typeof messageId !== "string") throw new TypeError("ctx.messageId must be str or null");
    if (position != null && !Number.isInteger(position)) throw new TypeError("ctx.position must be int or null");
    if (globalPosition != null && !Number.isInteger(globalPosition)) {
      throw new TypeError("ctx.globalPosition must be int or null");
    }
    if (metadata != null && (typeof metadata !== "object" || Array.isArray(metadata))) {
      throw new TypeError("ctx.metadata must be an object or null");
    }
    if (time != null && (typeof time !== "string" || !ISO.test(time))) {
      throw new TypeError("ctx.time must be an ISO 8601 string or null");
    }
    const context = new Context({
      streamName,
      messageId: messageId ?? null,
      position: position ?? null,
      globalPosition: globalPosition ?? null,
      metadata: metadata ?? {},
    });
    context._timeText = time ?? null;
    return context;
  }

  /** The ctx JSON object of the WIT contract. */
  toJson() {
    return {
      messageId: this.messageId,
      streamName: this.streamName,
      position: this.position,
      globalPosition: this.globalPosition,
      metadata: { ...this.metadata },
      time: this.time === null ? null : this.time.toISOString(),
    };
  }

  /** True when this command was already handled: its position is at or before `sequence`. */
  processed(sequence) {
    return sequence != null && this.position !== null && this.position <= sequence;
  }

  /** Throws Ignore when processed(sequence) says the command was already handled. */
  ignoreIfProcessed(sequence, reason) {
    if (this.processed(sequence)) {
      throw new Ignore(reason ?? `command at position ${this.position} already processed`);
    }
  }
}

// ISO 8601 with up to microseconds (Python's isoformat): JavaScript keeps milliseconds.
const ISO = /^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/;

/** A Date for an ISO 8601 text (fraction cut to milliseconds), or null. */
export function parseTime(text) {
  const found = ISO.exec(text);
  if (found === null) return null;
  const fraction = found[2] ? `.${found[2].slice(0, 3).padEnd(3, "0")}` : "";
  const when = new Date(`${found[1].replace(" ", "T")}${fraction}${found[3] ?? "Z"}`);
  return Number.isNaN(when.getTime()) ? null : when;
}
