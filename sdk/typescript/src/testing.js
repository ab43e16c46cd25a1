// Given/when/then for aggregates under Node: the same JSON path the component takes, and
// payloads validated against the schema as the runtime validates them (thalo.sdk.testing).
import { isDeepStrictEqual } from "node:util";
import { Context } from "./context.js";
import { EntityCore } from "./dispatch.js";
import { Ignore, Rejected } from "./errors.js";
import { commandViolations } from "./schema.js";

/** A payload the runtime would refuse: the violations it would report. */
export class PayloadInvalid extends Error {
  constructor(what, violations) {
    super(`${what} does not match the schema:\n${violations.map((v) => `  ${v.path}: ${v.message}`).join("\n")}`);
    this.name = "PayloadInvalid";
    this.violations = violations;
  }
}

const show = (value) => JSON.stringify(value);

/** What one command did: its events, or a rejection, or an ignore. */
export class Outcome {
  constructor(command) {
    this.command = command;
    this.events = [];
    this.rejected = null;
    this.ignored = false;
    this.ignoreReason = null;
  }

  /** Asserts the command produced exactly `expected` ({type, data} events), in order. */
  then(...expected) {
    this.notRefused();
    const wanted = JSON.parse(JSON.stringify(expected));
    const normal = wanted.map((event) => ({ type: event.type, data: this.normalize(event) }));
    if (!isDeepStrictEqual(normal, this.events)) {
      throw new Error(`${this.command} produced ${show(this.events)}, expected ${show(normal)}`);
    }
    return this;
  }

  /** Asserts the command was rejected (with `containing` in the reason, if given). */
  thenRejected(containing) {
    if (this.rejected === null) throw new Error(`${this.command} was not rejected: ${this.what()}`);
    if (containing !== undefined && !this.rejected.includes(containing)) {
      throw new Error(`${this.command} was rejected with ${show(this.rejected)}, which does not contain ${show(containing)}`);
    }
    return this;
  }

  /** Asserts the command was ignored (an idempotent no-op). */
  thenIgnored() {
    if (!this.ignored) throw new Error(`${this.command} was not ignored: ${this.what()}`);
    return this;
  }

  notRefused() {
    if (this.rejected !== null || this.ignored) throw new Error(`${this.command} produced no events: ${this.what()}`);
  }

  what() {
    if (this.rejected !== null) return `rejected (${this.rejected})`;
    if (this.ignored) return `ignored (${this.ignoreReason})`;
    return `it produced ${show(this.events)}`;
  }
}

/** One entity under test; when() applies the events it produces, like the runtime. */
export class AggregateTest {
  constructor(cls, id = "test-1") {
    this.cls = cls;
    this.id = id;
    this.core = EntityCore.create(cls, id);
  }

  /** The entity's stream, named the Message DB way (BankAccount -> bankAccount-ID). */
  get streamName() {
    const name = this.cls.spec.aggregate;
    return `${name.slice(0, 1).toLowerCase()}${name.slice(1)}-${this.id}`;
  }

  /** The aggregate object, to assert on its fields. */
  get state() {
    return this.core.aggregate;
  }

  /** Applies past events ({type, data}, as the generated constructors make them) through JSON. */
  given(...events) {
    this.core.apply(JSON.stringify(events.map((event) => ({ type: event.type, data: event.data }))));
    return this;
  }

  /**
   * Applies an event as an older schema stored it (its `schemaVersion`), the way a replay
   * does: the ESDL defaults filled in, then the aggregate's `upcast` hook.
   */
  givenStored(eventType, data, schemaVersion = 1) {
    const event = { type: eventType, data: JSON.parse(JSON.stringify(data)) };
    const current = this.cls.spec.upcasting?.[eventType];
    if (current !== undefined && schemaVersion < current.version) {
      event.data = withDefaults(event.data, current.defaults, this.cls.spec.events[eventType]);
      event.schemaVersion = schemaVersion;
    }
    this.core.apply(JSON.stringify([event]));
    return this;
  }

  /** Handles `command` and applies its events. Throws PayloadInvalid like the runtime would. */
  when(command, payload = {}, options = {}) {
    const body = JSON.parse(JSON.stringify(payload));
    const spec = this.cls.spec;
    if (Object.hasOwn(spec.commands, command)) {
      const violations = commandViolations(spec, command, body);
      if (violations.length) throw new PayloadInvalid(`payload of command '${command}'`, violations);
    }
    const ctx = new Context({
      streamName: options.streamName ?? this.streamName,
      messageId: options.messageId ?? null,
      position: options.position ?? null,
      metadata: options.metadata ?? {},
      time: options.time ?? null,
    });
    const outcome = new Outcome(command);
    outcome.normalize = (event) => normalizeExpected(spec, event);
    let text;
    try {
      text = this.core.handle(JSON.stringify(ctx.toJson()), JSON.stringify({ name: command, payload: body }));
    } catch (error) {
      if (error instanceof Rejected) {
        outcome.rejected = error.reason;
        return outcome;
      }
      if (error instanceof Ignore) {
        outcome.ignored = true;
        outcome.ignoreReason = error.reason;
        return outcome;
      }
      throw error;
    }
    this.core.apply(text);
    outcome.events = JSON.parse(text);
    return outcome;
  }

  /** A new aggregate rebuilt from this one's snapshot (checks the round trip). */
  restored() {
    return EntityCore.restore(this.cls, this.id, this.core.snapshot()).aggregate;
  }
}

/** The host's rule: a default fills a missing field, and a null one its type requires. */
function withDefaults(data, defaults, fields) {
  const filled = { ...data };
  const optional = new Set((fields ?? []).filter(([, type]) => type.endsWith("?")).map(([name]) => name));
  for (const [name, value] of Object.entries(defaults)) {
    if (filled[name] !== undefined && filled[name] !== null) continue;
    if (!optional.has(name) || !(name in filled)) filled[name] = JSON.parse(JSON.stringify(value));
  }
  return filled;
}

function normalizeExpected(spec, event) {
  const fields = spec.events[event.type];
  if (fields === undefined) return event.data;
  const out = {};
  for (const [name] of fields) out[name] = event.data?.[name] ?? null;
  return out;
}
