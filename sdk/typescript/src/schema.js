// The schema as the generated module describes it (`spec`): field lists with ESDL type
// spellings. Used to decode (required fields present), to encode events exactly as the
// Python SDK does (declared order, a missing optional field as null), and in tests to
// validate payloads as the runtime does (thalo.esdl's validator, same messages).

// thalo.esdl.model.SCALARS: the labels the runtime's messages use.
const SCALARS = {
  String: "UTF-8 string",
  Int: "32-bit signed integer",
  Long: "64-bit signed integer",
  Float: "32-bit float",
  Double: "64-bit float",
  Bool: "boolean",
  Bytes: "bytes, base64 in JSON",
};
const INT = [-(2 ** 31), 2 ** 31 - 1];
const LONG = [-(2n ** 63n), 2n ** 63n - 1n];
const FLOAT_MAX = 3.4028234663852886e38;
const parsed = new Map();

/** `[String?]?` -> { item: { name: "String", optional: true }, optional: true }. */
export function parseType(text) {
  let ref = parsed.get(text);
  if (ref === undefined) {
    const optional = text.endsWith("?");
    const inner = optional ? text.slice(0, -1) : text;
    ref = inner.startsWith("[")
      ? { item: parseType(inner.slice(1, -1)), name: null, optional }
      : { item: null, name: inner, optional };
    ref.text = text;
    parsed.set(text, ref);
  }
  return ref;
}

/** `value` as the Python SDK encodes it: declared fields in order, missing optionals null. */
export function normalize(spec, fields, value) {
  let plan = plans.get(fields);
  if (plan === undefined) {
    plan = fields.map(([name, type]) => {
      const ref = parseType(type);
      return [name, ref.item === null && ref.name in SCALARS ? null : ref];
    });
    plans.set(fields, plan);
  }
  const out = {};
  for (let i = 0; i < plan.length; i++) {
    const [name, ref] = plan[i];
    const item = value[name];
    out[name] = item === undefined ? null : ref === null ? item : normalizeValue(spec, ref, item);
  }
  return out;
}

// Per field list: [name, null for a scalar (copied as is) or the parsed type].
const plans = new WeakMap();

function normalizeValue(spec, ref, value) {
  if (value === undefined || value === null) return null;
  if (ref.item !== null) return Array.isArray(value) ? value.map((v) => normalizeValue(spec, ref.item, v)) : value;
  const record = spec.types[ref.name];
  return record !== undefined && typeof value === "object" ? normalize(spec, record, value) : value;
}

function kind(value) {
  if (value === null) return "null";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (typeof value === "bigint") return "integer";
  if (typeof value === "string") return "string";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return "object";
  return typeof value;
}

const expected = (label, value) => [["", `expected ${label}, got ${kind(value)}`]];

function checkScalar(name, value) {
  const label = `${name} (${SCALARS[name]})`;
  switch (name) {
    case "Int":
    case "Long": {
      const [low, high] = name === "Int" ? INT : LONG;
      if (!(Number.isInteger(value) || typeof value === "bigint")) return expected(label, value);
      const big = BigInt(value);
      return big >= BigInt(low) && big <= BigInt(high)
        ? null
        : [["", `${value} is out of range for ${label}: [${low}, ${high}]`]];
    }
    case "Float":
    case "Double": {
      if (typeof value !== "number") return expected(label, value);
      const limit = name === "Float" ? FLOAT_MAX : Infinity;
      return Number.isFinite(value) && Math.abs(value) <= limit ? null : [["", `${value} is out of range for ${label}`]];
    }
    case "String":
      return typeof value === "string" ? null : expected("String", value);
    case "Bool":
      return typeof value === "boolean" ? null : expected("Bool", value);
    case "Bytes":
      if (typeof value !== "string") return expected("Bytes (a base64 string)", value);
      return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value)
        ? null
        : [["", "expected Bytes: not valid base64"]];
    default:
      return null;
  }
}

function checkType(spec, ref, value) {
  if (value === null && ref.optional) return null;
  if (ref.item !== null) {
    const required = ref.text.endsWith("?") ? ref.text.slice(0, -1) : ref.text;
    if (!Array.isArray(value)) return expected(`array ${required}`, value);
    const problems = [];
    value.forEach((item, index) => {
      for (const [path, message] of checkType(spec, ref.item, item) ?? []) problems.push([`[${index}]${path}`, message]);
    });
    return problems.length ? problems : null;
  }
  if (ref.name in SCALARS) return checkScalar(ref.name, value);
  return checkFields(spec, ref.name, spec.types[ref.name], value);
}

function memberPath(key) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `['${key}']`;
}

function checkFields(spec, label, fields, value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return expected(`object ${label}`, value);
  const problems = [];
  const known = new Set();
  for (const [name, type] of fields) {
    known.add(name);
    if (!(name in value)) {
      if (!type.endsWith("?")) problems.push([`.${name}`, "required field is missing"]);
      continue;
    }
    for (const [path, message] of checkType(spec, parseType(type), value[name]) ?? []) {
      problems.push([`.${name}${path}`, message]);
    }
  }
  const names = fields.map(([name]) => name).join(", ") || "no fields";
  for (const key of Object.keys(value)) {
    if (!known.has(key)) problems.push([memberPath(key), `unknown field (${label} has ${names})`]);
  }
  return problems.length ? problems : null;
}

/** The schema violations of a command payload, as [{ path, message }] (empty when valid). */
export function commandViolations(spec, command, payload) {
  const found = checkFields(spec, `command ${command}`, spec.commands[command].params, payload) ?? [];
  return found.map(([path, message]) => ({ path: `$${path}`, message }));
}
