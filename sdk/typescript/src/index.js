// thalo's guest SDK for TypeScript and JavaScript: the same concepts and names as
// thalo.sdk (Python). Plain ES modules: they run under Node in unit tests and are
// bundled into the component by `thalo build`.
export { Aggregate } from "./aggregate.js";
export { Context } from "./context.js";
export { DispatchError, Ignore, Rejected } from "./errors.js";
export { log } from "./log.js";

/** Bytes fields cross as base64 text: this encodes a Uint8Array. */
export function encodeBytes(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

/** The Uint8Array of a base64 Bytes field. */
export function decodeBytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
