import type { Aggregate, SchemaSpec } from "./index.js";

/** Makes `cls` the aggregate behind the component; `thalo build` calls it. */
export function install(cls: (new (id: string) => Aggregate) & { spec: SchemaSpec }): unknown;
