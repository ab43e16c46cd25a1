// Misbehaviour on request, to prove the sandbox, budgets and trap recovery for JS guests.
import { Context, Ignore, Rejected, log } from "@thalo/sdk";
import { ChaosBase, Done, Other, type ChatCommand, type CrashCommand, type HogCommand } from "./chaos_schema.js";
import type { ReadEnvCommand, RefuseCommand, SkipCommand } from "./chaos_schema.js";

export class Chaos extends ChaosBase {
  done = 0;
  rolls: number[] = [];

  handleSpin(): ReturnType<typeof Done> {
    for (;;) this.done += 1;
  }

  handleHog(ctx: Context, { megabytes }: HogCommand) {
    const kept: Uint8Array[] = [];
    for (let i = 0; i < megabytes; i++) kept.push(new Uint8Array(1 << 20).fill(1));
    return Done({ detail: `held ${kept.length} blocks` });
  }

  handleCrash(ctx: Context, { message }: CrashCommand): ReturnType<typeof Done> {
    throw new Error(message);
  }

  handleReadEnv(ctx: Context, { name }: ReadEnvCommand) {
    const env = (globalThis as { process?: { env?: Record<string, string> } }).process?.env;
    return Done({ detail: env === undefined ? "no environment" : String(env[name]) });
  }

  handleChat(ctx: Context, { message }: ChatCommand) {
    log("info", message);
    console.log(`console: ${message}`);
    return Done({ detail: "chatted" });
  }

  handleRefuse(ctx: Context, { reason }: RefuseCommand): ReturnType<typeof Done> {
    throw new Rejected(reason);
  }

  handleSkip(ctx: Context, { reason }: SkipCommand): ReturnType<typeof Done> {
    throw new Ignore(reason);
  }

  handleWrongEvent() {
    return Other({ detail: "not declared for wrong_event" }) as unknown as ReturnType<typeof Done>;
  }

  handleClock() {
    return Done({ detail: `${Date.now()} ${new Date().toISOString()} ${performance.now()}` });
  }

  handleRoll() {
    const bytes = crypto.getRandomValues(new Uint8Array(4));
    return Done({ detail: `${Math.random()} ${Math.random()} ${bytes.join(",")}` });
  }

  applyDone(event: Done) {
    this.done += 1;
    if (event.detail.startsWith("roll")) this.rolls.push(Math.random());
  }

  applyOther() {}
}
