// What an aggregate throws to answer a command without producing events, and the
// SDK's own routing errors. Same names and meaning as thalo.sdk (Python).

/** Thrown by a handler: the command is refused for a domain reason. */
export class Rejected extends Error {
  constructor(reason) {
    super(reason);
    this.name = "Rejected";
    this.reason = reason;
  }
}

/** Thrown by a handler: the command is a no-op (usually: already processed). */
export class Ignore extends Error {
  constructor(reason) {
    super(reason ?? "ignored");
    this.name = "Ignore";
    this.reason = reason ?? null;
  }
}

/** The SDK could not route or decode a call; kind names the WIT error case. */
export class DispatchError extends Error {
  constructor(kind, detail) {
    super(`${kind}: ${detail}`);
    this.name = "DispatchError";
    this.kind = kind;
    this.detail = detail;
  }
}
