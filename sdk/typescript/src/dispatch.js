// Turns the JSON strings of the WIT contract into calls on an aggregate, and back.
// The component glue and the native test helper both go through EntityCore, so an
// aggregate behaves the same under Node and inside wasm.
import { sortedKeys } from "./aggregate.js";
import { Context } from "./context.js";
import { DispatchError } from "./errors.js";
import { normalize } from "./schema.js";

/** Set by the component glue: seed(kind, id, tail, time) is called before a command is
 * decided ("handle", entity id, ctx text, ctx.time) and before each event is applied
 * ("apply", entity id, stream position), so random draws and the clock replay. */
export const hooks = { seed: null };

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
    for (const [name, declared] of Object.entries(spec.commands)) {
      const required = declared.params.filter(([, type]) => !type.endsWith("?")).map(([field]) => field);
      commands.set(name, { method: `handle${pascalCase(name)}`, required, events: declared.events });
    }
    const events = new Map();
    for (const [name, fields] of Object.entries(spec.events)) {
      const required = fields.filter(([, type]) => !type.endsWith("?")).map(([field]) => field);
      events.set(name, { method: `apply${name}`, required, fields });
    }
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
    this.routes = routesOf(aggregate.constructor);
    // The stream position of the next event to apply, when known.
    this.position = position;
  }

  /** A fresh entity in its initial state (its first event is at position 0). */
  static create(cls, id) {
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

  applyBatch(batch, checked = false) {
    const events = this.routes.events;
    const aggregate = this.aggregate;
    const decoded = new Array(batch.length);
    const datas = new Array(batch.length);
    for (let index = 0; index < batch.length; index++) {
      const event = batch[index];
      if (!isObject(event) || typeof event.type !== "string") {
        throw new DispatchError("decode", `events[${index}] must be an object with a type`);
      }
      const route = events.get(event.type);
      if (route === undefined) throw new DispatchError("unknown-event", event.type);
      let data = event.data;
      let what = `events[${index}] (${event.type}): data`;
      if (event.schemaVersion !== undefined) {
        // Stored by an older schema (the host filled the ESDL defaults): upcast first.
        if (!isObject(data)) throw new DispatchError("decode", `${what} must be a JSON object`);
        data = aggregate.upcast(event.type, event.schemaVersion, data);
        what = `events[${index}] (${event.type}, stored at schema version ${event.schemaVersion}, upcast): data`;
      }
      if (!checked) checkRequired(route.required, data, what);
      decoded[index] = route.method;
      datas[index] = data;
    }
    const seed = hooks.seed;
    let position = this.position;
    for (let index = 0; index < batch.length; index++) {
      const event = batch[index];
      const given = event.position;
      if (Number.isInteger(given)) position = given;
      if (seed !== null) seed("apply", aggregate.id, position, event.time);
      aggregate[decoded[index]](datas[index]);
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
    this.applyBatch(events, true); // encoded from the declared fields: nothing missing
    return text;
  }

  handleDecoded(ctx, command) {
    const request = loads(command, "command");
    if (!isObject(request) || typeof request.name !== "string") {
      throw new DispatchError("decode", 'command must be an object {"name", "payload"}');
    }
    const name = request.name;
    const route = this.routes.commands.get(name);
    if (route === undefined) throw new DispatchError("unknown-command", name);
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
    if (hooks.seed !== null) hooks.seed("handle", this.aggregate.id, ctx, data.time);
    checkRequired(route.required, payload, `payload of ${name}`);
    const result = this.aggregate[route.method](context, payload);
    return encodeEvents(this.routes, name, route.events, result);
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

function checkRequired(required, value, what) {
  if (!isObject(value)) throw new DispatchError("decode", `${what} must be a JSON object`);
  for (let i = 0; i < required.length; i++) {
    if (value[required[i]] === undefined) {
      throw new DispatchError("decode", `${what}: required field ${required[i]} is missing`);
    }
  }
}

function encodeEvents(routes, command, allowed, result) {
  const items = result == null ? [] : Array.isArray(result) ? result : [result];
  const encoded = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item == null) continue;
    const type = item.type;
    if (typeof type !== "string" || !isObject(item.data)) {
      throw new TypeError(`handle of ${command} returned ${JSON.stringify(item)}, which is not an event`);
    }
    if (!allowed.includes(type)) {
      throw new TypeError(
        `handle of ${command} returned a ${type} event, but the schema says ${command} emits only ${allowed.join(", ") || "nothing"}`,
      );
    }
    encoded.push({ type, data: normalize(routes.spec, routes.events.get(type).fields, item.data) });
  }
  return encoded;
}
