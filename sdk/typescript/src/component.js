// The component side of the glue: binds the WIT `aggregate` export to EntityCore.
// Only `thalo build` uses this module: it imports the host's log function, which exists
// only inside the component. The build's entry is `export const aggregate = install(Cls)`.
import { log as hostLog } from "thalo:aggregate/host@0.2.0";
import { EntityCore, hooks } from "./dispatch.js";
import { DispatchError, Ignore, Rejected } from "./errors.js";
import { setLogSink } from "./log.js";
import { installSandbox, reseed } from "./sandbox.js";

const OOM_LINE = "out of memory: the JavaScript engine could not allocate";

function consoleLine(args) {
  return args.map((arg) => (typeof arg === "string" ? arg : safeJson(arg))).join(" ");
}

function safeJson(value) {
  try {
    return value instanceof Error ? `${value.name}: ${value.message}` : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

function report(error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : `thrown: ${safeJson(error)}`;
  if (/out of memory|allocation size overflow/i.test(text)) {
    hostLog("error", OOM_LINE);
    return;
  }
  const stack = error instanceof Error && error.stack ? `\n${error.stack}` : "";
  hostLog("error", `${text}${stack}`);
}

function translate(error) {
  if (error instanceof Rejected) return { tag: "rejected", val: error.reason };
  if (error instanceof Ignore) return { tag: "ignored", val: error.reason ?? undefined };
  if (error instanceof DispatchError) return { tag: error.kind, val: error.detail };
  return null;
}

/** An answer becomes the WIT error (thrown as {tag, val}); anything else is a bug: it is
 * logged with its stack and rethrown, so the component traps and the host discards it. */
function fail(error) {
  const answer = translate(error);
  if (answer !== null) throw answer;
  report(error);
  throw error;
}

/** Makes `cls` the aggregate behind every exported entity; returns the `aggregate` export. */
export function install(cls) {
  if (typeof cls !== "function" || cls.spec === undefined) {
    throw new TypeError(`${cls?.name ?? cls} is not a subclass of a generated aggregate base class`);
  }
  setLogSink((level, message) => hostLog(level, message));
  for (const [name, level] of [["debug", "debug"], ["log", "info"], ["info", "info"], ["warn", "warn"], ["error", "error"]]) {
    console[name] = (...args) => hostLog(level, consoleLine(args));
  }
  installSandbox();
  hooks.seed = reseed;

  // try/catch in each method rather than a shared wrapper: no closure per call.
  class Entity {
    constructor(id) {
      try {
        this.core = EntityCore.create(cls, id);
      } catch (error) {
        fail(error);
      }
    }
    apply(events) {
      try {
        this.core.apply(events);
      } catch (error) {
        fail(error);
      }
    }
    handle(ctx, command) {
      try {
        return this.core.handle(ctx, command);
      } catch (error) {
        return fail(error);
      }
    }
    execute(ctx, command) {
      try {
        return this.core.execute(ctx, command);
      } catch (error) {
        return fail(error);
      }
    }
    snapshot() {
      try {
        return this.core.snapshot();
      } catch (error) {
        return fail(error);
      }
    }
    static restore(id, snapshot) {
      const entity = Object.create(Entity.prototype);
      try {
        entity.core = EntityCore.restore(cls, id, snapshot);
      } catch (error) {
        fail(error);
      }
      return entity;
    }
  }
  return { Entity, schema: () => cls.spec.schema };
}
