// Log lines from aggregate code: the host's `log` import inside wasm, the console natively.

export const LEVELS = ["debug", "info", "warn", "error"];

function consoleSink(level, message) {
  const write = level === "error" ? console.error : level === "warn" ? console.warn : console.log;
  write(`[${level}] ${message}`);
}

let sink = consoleSink;

/** Routes log lines elsewhere (the component glue points this at the host import). */
export function setLogSink(next) {
  sink = next;
}

/** Writes one log line; level is debug, info, warn or error. */
export function log(level, message) {
  if (!LEVELS.includes(level)) {
    throw new TypeError(`log level must be one of ${LEVELS.join(", ")}, not ${JSON.stringify(level)}`);
  }
  sink(level, String(message));
}
