// Type declarations of @thalo/sdk (the implementation is plain ES modules beside this file).

/** An event as it crosses the boundary: its type name and its data. */
export interface Envelope<T extends string = string, D = unknown> {
  type: T;
  data: D;
}

/** A field list of the schema: [name, ESDL type spelling such as "Long?" or "[String]"]. */
export type FieldSpec = readonly (readonly [string, string])[];

/** What the generated module tells the SDK about its schema. */
export interface SchemaSpec {
  readonly aggregate: string;
  readonly version: string;
  readonly schema: string;
  readonly types: Readonly<Record<string, FieldSpec>>;
  readonly events: Readonly<Record<string, FieldSpec>>;
  readonly commands: Readonly<Record<string, { readonly params: FieldSpec; readonly events: readonly string[] }>>;
  /** Event types past schema version 1: their version and the ESDL defaults of their fields. */
  readonly upcasting?: Readonly<Record<string, { readonly version: number; readonly defaults: Readonly<Record<string, unknown>> }>>;
}

/** State of one entity plus its handle<Command> and apply<Event> methods. */
export abstract class Aggregate {
  /** Set by the generated base class. */
  static readonly spec: SchemaSpec;
  readonly id: string;
  constructor(id: string);
  /**
   * Brings the data of an event stored at an older schema `version` up to date before
   * it is applied (after the host filled its ESDL defaults). Default: as is.
   */
  upcast(eventType: string, version: number, data: Record<string, unknown>): Record<string, unknown>;
  /** The state as a JSON object. Default: every own field except `id` and `_private` ones. */
  toSnapshot(): Record<string, unknown>;
  /** Rebuilds an entity from toSnapshot's output. Default: a new entity with each field set. */
  static fromSnapshot<T extends Aggregate>(this: new (id: string) => T, id: string, state: Record<string, unknown>): T;
}

/** The context of one command: message id, stream, positions, metadata and time. */
export class Context {
  readonly streamName: string;
  /** The command's message id (its idempotency key), or null. */
  readonly messageId: string | null;
  /** The command message's stream position when read from a command stream, else null. */
  readonly position: number | null;
  readonly globalPosition: number | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly time: Date | null;
  constructor(fields: {
    streamName: string;
    messageId?: string | null;
    position?: number | null;
    globalPosition?: number | null;
    metadata?: Record<string, unknown> | null;
    time?: Date | null;
  });
  static fromJson(data: Record<string, unknown>): Context;
  toJson(): Record<string, unknown>;
  /** True when this command was already handled: its position is at or before `sequence`. */
  processed(sequence: number | null | undefined): boolean;
  /** Throws Ignore when processed(sequence) says the command was already handled. */
  ignoreIfProcessed(sequence: number | null | undefined, reason?: string): void;
}

/** Thrown by a handler: the command is refused for a domain reason. */
export class Rejected extends Error {
  readonly reason: string;
  constructor(reason: string);
}

/** Thrown by a handler: the command is a no-op (usually: already processed). */
export class Ignore extends Error {
  readonly reason: string | null;
  constructor(reason?: string | null);
}

/** The SDK could not route or decode a call; kind names the WIT error case. */
export class DispatchError extends Error {
  readonly kind: "unknown-command" | "unknown-event" | "decode";
  readonly detail: string;
  constructor(kind: string, detail: string);
}

/** Writes one line to the runtime's log (the console when run natively). */
export function log(level: "debug" | "info" | "warn" | "error", message: string): void;
export function encodeBytes(bytes: Uint8Array): string;
export function decodeBytes(text: string): Uint8Array;
