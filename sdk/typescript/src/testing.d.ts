import type { Aggregate, Envelope, SchemaSpec } from "./index.js";

/** A payload the runtime would refuse: the violations it would report. */
export class PayloadInvalid extends Error {
  readonly violations: { path: string; message: string }[];
}

/** What one command did: its events, or a rejection, or an ignore. */
export class Outcome {
  readonly command: string;
  readonly events: Envelope[];
  readonly rejected: string | null;
  readonly ignored: boolean;
  readonly ignoreReason: string | null;
  then(...expected: Envelope[]): Outcome;
  thenRejected(containing?: string): Outcome;
  thenIgnored(): Outcome;
}

export interface WhenOptions {
  position?: number | null;
  streamName?: string;
  messageId?: string | null;
  metadata?: Record<string, unknown>;
  time?: Date | null;
}

/** One entity under test; when() applies the events it produces, like the runtime. */
export class AggregateTest<A extends Aggregate> {
  constructor(cls: (new (id: string) => A) & { spec: SchemaSpec }, id?: string);
  readonly streamName: string;
  readonly state: A;
  given(...events: Envelope[]): this;
  /**
   * Applies an event as an older schema stored it (its `schemaVersion`), the way a replay
   * does: the ESDL defaults filled in, then the aggregate's `upcast` hook.
   */
  givenStored(eventType: string, data: Record<string, unknown>, schemaVersion?: number): this;
  when(command: string, payload?: Record<string, unknown>, options?: WhenOptions): Outcome;
  restored(): A;
}
