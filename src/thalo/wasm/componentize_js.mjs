// thalo build's Node side for TypeScript/JavaScript guests: type-check (tsc), bundle
// (esbuild, imports limited to the project's own files and @thalo/sdk), componentize
// (componentize-js, every WASI feature disabled). Reads one JSON request on stdin;
// prints one JSON line: {"ok": true, "imports": [...]} or {"ok": false, "errors": [...]}
// where each error is "path:line:column: message" relative to the staged project.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const request = JSON.parse(readFileSync(0, "utf8"));
const { app, entry, sdk, wit, world, out, typecheck, toolchain, features } = request;
const require = createRequire(join(toolchain, "thalo-toolchain.cjs"));
const HOST = /^thalo:aggregate\//;
const NODE_BUILTINS = new Set(require("node:module").builtinModules);
const NO_NETWORK = /^(node:)?(net|tls|dgram|dns|http|https|http2|child_process|cluster|worker_threads)$/;

function finish(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

function where(file, line, column) {
  const path = relative(app, isAbsolute(file) ? file : resolve(app, file)).split("\\").join("/");
  return `${path}:${line}:${column}`;
}

function typeCheck() {
  const ts = require("typescript");
  const options = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2022.d.ts"],
    types: [],
    skipLibCheck: true,
    allowJs: true,
    checkJs: false,
    isolatedModules: true,
    baseUrl: app,
    paths: { "@thalo/sdk": [join(sdk, "src/index.d.ts")], "@thalo/sdk/*": [join(sdk, "src/*.d.ts")] },
  };
  const program = ts.createProgram(typecheck.map((f) => join(app, f)), options);
  const errors = ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (!d.file) return `error TS${d.code}: ${message}`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    return `${where(d.file.fileName, line + 1, character + 1)}: error TS${d.code}: ${message}`;
  });
  if (errors.length) finish({ ok: false, stage: "tsc", errors });
}

const guard = {
  name: "thalo-guest-imports",
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      const spec = args.path;
      if (args.kind === "entry-point") return undefined;
      if (HOST.test(spec)) return { path: spec, external: true };
      if (spec === "@thalo/sdk" || spec.startsWith("@thalo/sdk/")) {
        const sub = spec === "@thalo/sdk" ? "index" : spec.slice("@thalo/sdk/".length);
        if (!["index", "component"].includes(sub)) {
          return { errors: [{ text: `imports ${spec}: a guest may import only @thalo/sdk (testing runs under Node only)` }] };
        }
        return { path: join(sdk, "src", `${sub}.js`) };
      }
      if (spec.startsWith(".") || isAbsolute(spec)) {
        const inside = resolve(args.resolveDir, spec);
        if (relative(app, inside).startsWith("..") && relative(sdk, inside).startsWith("..")) {
          return { errors: [{ text: `imports ${spec}, which is outside the project` }] };
        }
        return undefined;
      }
      const bare = spec.replace(/^node:/, "");
      if (NODE_BUILTINS.has(bare) || spec.startsWith("node:")) {
        const why = NO_NETWORK.test(spec) ? "guests get no network, processes or threads" : "guests get no Node APIs (no files, network or environment)";
        return { errors: [{ text: `imports ${spec}, but ${why}` }] };
      }
      return {
        errors: [{ text: `imports ${spec}, which is neither a file of this project nor @thalo/sdk (a guest bundles only its own code and the SDK)` }],
      };
    });
  },
};

async function bundle() {
  const esbuild = require("esbuild");
  try {
    const result = await esbuild.build({
      absWorkingDir: app,
      entryPoints: [entry],
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      write: false,
      logLevel: "silent",
      plugins: [guard],
    });
    return result.outputFiles[0].text;
  } catch (failure) {
    const errors = (failure.errors ?? [{ text: String(failure) }]).map((e) =>
      e.location ? `${where(e.location.file, e.location.line, e.location.column + 1)}: ${e.text}` : e.text,
    );
    finish({ ok: false, stage: "esbuild", errors });
  }
}

if (typecheck.length) typeCheck();
const code = await bundle();
const bundled = join(app, "__thalo_bundle__.js");
writeFileSync(bundled, code);
const { componentize } = await import(pathToFileURL(join(toolchain, "@bytecodealliance/componentize-js/src/componentize.js")));
let built;
try {
  built = await componentize({ sourcePath: bundled, witPath: wit, worldName: world, disableFeatures: features });
} catch (failure) {
  finish({ ok: false, stage: "componentize-js", errors: [String(failure?.message ?? failure).trim()] });
}
writeFileSync(out, built.component);
finish({ ok: true, imports: built.imports.map(([module, name]) => `${module}#${name}`) });
