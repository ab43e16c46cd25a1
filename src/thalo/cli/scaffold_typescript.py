"""``thalo new NAME --lang typescript``: the TypeScript twin of the Python scaffold.

The same aggregate (``increment`` -> ``Incremented``, a running ``total``, redeliveries
ignored) with ``package.json`` (``@thalo/sdk`` from this thalo's own copy), a
``tsconfig.json``, the generated base class, the aggregate in ``src/NAME.ts`` and unit
tests that run under Node (``npm test``). Errors are ``BuildError`` (exit 2).
"""

from __future__ import annotations

__all__ = ["scaffold_typescript"]

import json
from pathlib import Path

from thalo.cli.build import (
    NAME,
    SCAFFOLD_SCHEMA,
    class_name_of,
    module_name_of,
    refuse_existing,
    write_files,
)
from thalo.errors import BuildError

# Words a TypeScript class or module cannot be named (reserved in strict mode ES modules).
_JS_RESERVED = frozenset(
    {
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "let",
        "static",
        "implements",
        "interface",
        "package",
        "private",
        "protected",
        "public",
        "await",
    }
)


def scaffold_typescript(directory: Path, name: str) -> list[Path]:
    """The TypeScript twin of the Python scaffold: package.json, tsconfig, src, test."""
    from thalo.esdl import generate_typescript, parse
    from thalo.wasm.build_js import find_ts_sdk_dir

    if not NAME.match(name):
        raise BuildError(
            f"{name!r} is not a usable aggregate name: use letters, digits, - or _ "
            "(for example bank-account or BankAccount)"
        )
    class_name = class_name_of(name)
    module = module_name_of(class_name)
    for word in (module, class_name):
        if word in _JS_RESERVED:
            raise BuildError(
                f"{name!r} is not a usable aggregate name: {word!r} is reserved in "
                "TypeScript; pick another"
            )
    refuse_existing(directory)
    fields = {
        "Class": class_name,
        "module": module,
        "dist": module.replace("_", "-"),
        "sdk": json.dumps(f"file:{find_ts_sdk_dir().as_posix()}"),
    }
    esdl = _ESDL_TS.format(**fields)
    generated = generate_typescript(parse(esdl, f"{module}.esdl"), source_name=f"{module}.esdl")
    files = {
        "package.json": _PACKAGE_JSON.format(**fields),
        "tsconfig.json": _TSCONFIG,
        f"{module}.esdl": esdl,
        f"src/{module}_schema.ts": generated,
        f"src/{module}.ts": _MODULE_TS.format(**fields),
        f"test/{module}.test.ts": _TEST_TS.format(**fields),
        ".gitignore": _GITIGNORE,
    }
    return write_files(directory, files)


_ESDL_TS = (
    """\
// {Class}: edit the schema, run `thalo codegen --lang typescript {module}.esdl -o
// src/{module}_schema.ts`, implement the new methods in src/{module}.ts, then `thalo build`.
"""
    + SCAFFOLD_SCHEMA
)

# What building, publishing and testing leave in the project: none of it is source.
_GITIGNORE = """\
# the default store of thalo publish / execute (sqlite:///.thalo/thalo.db)
.thalo/
# thalo build output
dist/
*.wasm
# npm and tsc
node_modules/
build/
"""

_PACKAGE_JSON = """\
{{
  "name": "{dist}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {{
    "test": "tsc -p . && node --test build/test/"
  }},
  "devDependencies": {{
    "@thalo/sdk": {sdk},
    "@types/node": "20.19.25",
    "typescript": "5.9.3"
  }},
  "thalo": {{
    "aggregate": "src/{module}.ts:{Class}",
    "schema": "{module}.esdl",
    "generated": "src/{module}_schema.ts"
  }}
}}
"""

_TSCONFIG = """\
{
  "compilerOptions": {
    "target": "es2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "outDir": "build",
    "rootDir": ".",
    "types": ["node"],
    "skipLibCheck": true
  },
  "include": ["src", "test"]
}
"""

_MODULE_TS = """\
// The {Class} aggregate: decide commands in handle*, change state in apply*.
import {{ Context, Rejected }} from "@thalo/sdk";
import {{ {Class}Base, Incremented, type IncrementCommand }} from "./{module}_schema.js";

export class {Class} extends {Class}Base {{
  total = 0;
  // Position of the last command applied: redeliveries at or before it are ignored.
  sequence: number | null = null;

  handleIncrement(ctx: Context, {{ amount }}: IncrementCommand) {{
    ctx.ignoreIfProcessed(this.sequence);
    if (amount <= 0) throw new Rejected(`amount must be positive, got ${{amount}}`);
    return Incremented({{ amount, total: this.total + amount, sequence: ctx.position }});
  }}

  applyIncremented(event: Incremented) {{
    this.total = event.total;
    if (event.sequence != null) this.sequence = event.sequence;
  }}
}}
"""

_TEST_TS = """\
// Unit tests of {Class} under Node (`npm test`): no wasm needed.
import assert from "node:assert/strict";
import {{ test }} from "node:test";
import {{ AggregateTest, PayloadInvalid }} from "@thalo/sdk/testing";
import {{ {Class} }} from "../src/{module}.js";
import {{ Incremented }} from "../src/{module}_schema.js";

test("increment adds to the total", () => {{
  const t = new AggregateTest({Class}).given(Incremented({{ amount: 1, total: 1 }}));
  t.when("increment", {{ amount: 2 }}).then(Incremented({{ amount: 2, total: 3 }}));
  assert.equal(t.state.total, 3);
}});

test("non-positive amounts are rejected", () => {{
  new AggregateTest({Class}).when("increment", {{ amount: 0 }}).thenRejected("positive");
}});

test("a redelivered command is ignored", () => {{
  const t = new AggregateTest({Class});
  const again = {{ position: 7 }};
  const first = Incremented({{ amount: 1, total: 1, sequence: 7 }});
  t.when("increment", {{ amount: 1 }}, again).then(first);
  t.when("increment", {{ amount: 1 }}, again).thenIgnored();
}});

test("a payload the schema refuses is refused here too", () => {{
  const t = new AggregateTest({Class});
  assert.throws(() => t.when("increment", {{ amount: "3" }}), PayloadInvalid);
}});

test("snapshot round trip", () => {{
  const given = Incremented({{ amount: 5, total: 5, sequence: 3 }});
  const restored = new AggregateTest({Class}).given(given).restored();
  assert.deepEqual([restored.total, restored.sequence], [5, 3]);
}});
"""
