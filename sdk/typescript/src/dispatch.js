// Turns the JSON strings of the WIT contract into calls on an aggregate, and back.
// The component glue and the native test helper both go through EntityCore, so an
// aggregate behaves the same under Node and inside wasm.
import { sortedKeys } from "./aggregate.js";
import { Context } from "./context.js";
import { DispatchError } from "./errors.js";
import { normalize, requireFields } from "./schema.js";

/** Set by the component glue: called with a seed text before a command is decided and
 * before each event is applied ("apply\0id\0position"), so random draws replay. */
export const hooks = { seed: null, time: null };

const routes = new WeakMap();

function pascalCase(name) {
  return name.split("_").map((part) => part.slice(0, 1).toUpperCase() + part.slice(1)).join("");
}

function routesOf(cls) {
  let found = routes.get(cls);
  if (found === undefined) {
    const spec = cls.spec;
    if (spec === undefined) throw new TypeError(`${cls.name} has no spec: subclass the generated base class`);
    const commands = new Map();
    for (const name of Object.keys(spec.commands)) commands.set(name, `handle${pascalCase(name)}`);
    const events = new Map();
    for (const name of Object.keys(spec.events)) events.set(name, `apply${name}`);
    found = { spec, commands, events };
    routes.set(cls, found);
  }
  return found;
}

function loads(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DispatchError("decode", `${what} is not valid JSON: ${error.message}`);
  }
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** One aggregate instance behind the WIT methods, speaking JSON text. Throws DispatchError,
 * Rejected or Ignore; anything else is a bug in the aggregate (inside wasm: a trap). */
export class EntityCore {
  constructor(aggregate, position = null) {
    this.aggregate = aggregate;
    // The stream position of the next event to apply, when known.
    this.position = position;
  }

  /** A fresh entity in its initial state (its first event is at position 0). */
  static create(cls, id) {
    routesOf(cls);
    return new EntityCore(new cls(id), 0);
  }

  /** An entity rebuilt from the JSON text of snapshot(). */
  static restore(cls, id, snapshot) {
    const state = loads(snapshot, "snapshot");
    if (!isObject(state)) throw new DispatchError("decode", "snapshot must be a JSON object");
    try {
      return new EntityCore(cls.fromSnapshot(id, state));
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) {
        throw new DispatchError("decode", `snapshot does not fit ${cls.name}: ${error.message}`);
      }
      throw error;
    }
  }

  /** Applies a JSON array of {type, data}; every event is decoded before the first is applied. */
  apply(events) {
    const batch = loads(events, "events");
    if (!Array.isArray(batch)) throw new DispatchError("decode", "events must be a JSON array");
    this.applyBatch(batch);
  }

  applyBatch(batch) {
    const { spec, events } = routesOf(this.aggregate.constructor);
    const decoded = batch.map((event, index) => {
      if (!isObject(event) || typeof event.type !== "string") {
        throw new DispatchError("decode", `events[${index}] must be an object with a type`);
      }
      const method = events.get(event.type);
      if (method === undefined) throw new DispatchError("unknown-event", event.type);
      try {
        requireFields(spec.events[event.type], event.data, `events[${index}].data`);
      } catch (error) {
        throw new DispatchError("decode", `events[${index}] (${event.type}): ${error.message}`);
      }
      return [method, event.data];
    });
    const seed = hooks.seed;
    let position = this.position;
    for (let index = 0; index < decoded.length; index++) {
      const [method, data] = decoded[index];
      const given = batch[index].position;
      if (Number.isInteger(given)) position = given;
      this.position = position;
      if (seed !== null) seed(`apply\0${this.aggregate.id}\0${position}`, batch[index].time);
      this.aggregate[method](data);
      if (position !== null) position += 1;
    }
    this.position = position;
  }

  /** Decides {name, payload} under ctx; returns a JSON array of events. */
  handle(ctx, command) {
    return JSON.stringify(this.handleDecoded(ctx, command));
  }

  /** handle, then apply of its events: one guest call instead of two. */
  execute(ctx, command) {
    const events = this.handleDecoded(ctx, command);
    const text = JSON.stringify(events);
    this.applyBatch(events);
    return text;
  }

  handleDecoded(ctx, command) {
    const request = loads(command, "command");
    if (!isObject(request) || typeof request.name !== "string") {
      throw new DispatchError("decode", 'command must be an object {"name", "payload"}');
    }
    const name = request.name;
    const { spec, commands } = routesOf(this.aggregate.constructor);
    const declared = spec.commands[name];
    if (declared === undefined || !Object.hasOwn(spec.commands, name)) {
      throw new DispatchError("unknown-command", name);
    }
    const payload = request.payload ?? {};
    if (!isObject(payload)) throw new DispatchError("decode", `payload of ${name} must be a JSON object`);
    const data = loads(ctx, "ctx");
    if (!isObject(data)) throw new DispatchError("decode", "ctx must be a JSON object");
    if (Number.isInteger(data.eventPosition)) this.position = data.eventPosition;
    let context;
    try {
      context = Context.fromJson(data);
    } catch (error) {
      throw new DispatchError("decode", error.message);
    }
    if (hooks.seed !== null) hooks.seed(`handle\0${this.aggregate.id}\0${ctx}`, data.time);
    try {
      requireFields(declared.params, payload, `payload of ${name}`);
    } catch (error) {
      throw new DispatchError("decode", error.message);
    }
    const result = this.aggregate[commands.get(name)](context, payload);
    return encodeEvents(spec, name, declared.events, result);
  }

  /** The state as JSON text, keys sorted (the aggregate's toSnapshot). */
  snapshot() {
    try {
      return JSON.stringify(sortedKeys(this.aggregate.toSnapshot()));
    } catch (error) {
      if (error instanceof TypeError) throw new DispatchError("decode", `cannot encode snapshot: ${error.message}`);
      throw error;
    }
  }
}

function encodeEvents(spec, command, allowed, result) {
  const items = result == null ? [] : Array.isArray(result) ? result.filter((item) => item != null) : [result];
  return items.map((item) => {
    const type = item?.type;
    if (typeof type !== "string" || !isObject(item.data)) {
      throw new TypeError(`handle of ${command} returned ${JSON.stringify(item)}, which is not an event`);
    }
    if (!allowed.includes(type)) {
      throw new TypeError(
        `handle of ${command} returned a ${type} event, but the schema says ${command} emits only ${allowed.join(", ") || "nothing"}`,
      );
    }
    return { type, data: normalize(spec, spec.events[type], item.data) };
  });
}
