// The base class every aggregate derives from (through its generated `{Name}Base`).

/**
 * State of one entity plus its handle<Command> and apply<Event> methods. The generated
 * base class sets the static `spec`. Override toSnapshot/fromSnapshot when the state
 * holds more than plain JSON values.
 */
export class Aggregate {
  constructor(id) {
    this.id = id;
  }

  /**
   * Brings the data of an event stored at schema `version` (older than its type's
   * version in the ESDL) up to date before it is applied. Default: as is. The host has
   * already filled the fields that have an ESDL default; override this for what
   * defaults cannot do (retype, rename, compute). Called only for older events.
   */
  upcast(eventType, version, data) {
    return data;
  }

  /** The state as a JSON object. Default: every own field except `id` and `_private` ones. */
  toSnapshot() {
    const state = {};
    for (const [key, value] of Object.entries(this)) {
      if (key === "id" || key.startsWith("_")) continue;
      checkJson(value, key);
      state[key] = value;
    }
    return state;
  }

  /** Rebuilds an entity from toSnapshot's output. Default: a new entity with each field set. */
  static fromSnapshot(id, state) {
    const entity = new this(id);
    Object.assign(entity, state);
    return entity;
  }
}

function checkJson(value, path) {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (Number.isFinite(value)) return;
    throw new TypeError(`snapshot field ${path} is ${value}, which JSON cannot hold`);
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => checkJson(item, `${path}[${index}]`));
    return;
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) checkJson(item, `${path}.${key}`);
    return;
  }
  const what = value === undefined ? "undefined" : (value?.constructor?.name ?? typeof value);
  throw new TypeError(
    `snapshot field ${path} holds ${what}, which JSON cannot restore as is: override toSnapshot/fromSnapshot`,
  );
}

/** Object keys sorted at every depth: snapshots are byte-for-byte what the Python SDK writes. */
export function sortedKeys(value) {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== "object") return value;
  const out = {};
  for (const key of Object.keys(value).sort()) out[key] = sortedKeys(value[key]);
  return out;
}
