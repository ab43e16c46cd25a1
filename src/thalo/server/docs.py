"""The ``GET /docs`` page: the OpenAPI document rendered in the browser, offline.

One self-contained HTML page (inline CSS and vanilla JavaScript, no CDN, no external
asset) that fetches ``/openapi.json`` and shows the operations by tag, with their
parameters, request and response schemas and a "try it" form, so that a server
cut off from the internet still documents itself.
"""

from __future__ import annotations

__all__ = ["docs_page"]


def docs_page() -> str:
    """The HTML of the API documentation page (the same text every time)."""
    return _PAGE


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>thalo API</title>
<style>
:root {
  color-scheme: light dark;
  --bg: #fbfbfa; --fg: #1d1f21; --muted: #6a6f75; --line: #d9dcdf; --card: #ffffff;
  --code: #f0f1f2; --accent: #2f6fb5; --get: #2f7d4f; --post: #2f6fb5; --other: #8a5a00;
  --bad: #b3261e;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #16181a; --fg: #e4e6e8; --muted: #9aa0a6; --line: #33373b; --card: #1e2124;
    --code: #2a2e32; --accent: #7fb0ea; --get: #6cc08f; --post: #7fb0ea; --other: #e0b35c;
    --bad: #f28b82;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
header {
  display: flex; flex-wrap: wrap; gap: .75rem 1.5rem; align-items: center;
  padding: .9rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--card);
  position: sticky; top: 0; z-index: 1;
}
header h1 { font-size: 1.2rem; margin: 0; }
header .version { color: var(--muted); }
header label { margin-left: auto; display: flex; gap: .5rem; align-items: center; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem 1.5rem 4rem; }
code, pre, input, textarea {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
code { background: var(--code); padding: 0 .25em; border-radius: 3px; font-size: .92em; }
pre {
  background: var(--code); padding: .6rem .8rem; border-radius: 4px; overflow: auto;
  max-height: 28rem; margin: .4rem 0;
}
input, textarea, select {
  font-size: .9rem; padding: .3rem .45rem; border: 1px solid var(--line); border-radius: 4px;
  background: var(--bg); color: var(--fg);
}
textarea { width: 100%; min-height: 7rem; }
button {
  font: inherit; padding: .35rem 1rem; border-radius: 4px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--bg); cursor: pointer;
}
.intro { color: var(--muted); }
.filter { width: 100%; margin: .5rem 0 1rem; padding: .45rem .6rem; }
section.tag > h2 { margin: 1.8rem 0 .2rem; font-size: 1.15rem; }
section.tag > p { margin: 0 0 .6rem; color: var(--muted); }
details.op {
  border: 1px solid var(--line); border-radius: 6px; margin: .45rem 0; background: var(--card);
}
details.op > summary {
  cursor: pointer; padding: .45rem .7rem; display: flex; gap: .7rem; align-items: baseline;
  flex-wrap: wrap; list-style: none;
}
details.op > summary::-webkit-details-marker { display: none; }
details.op[open] > summary { border-bottom: 1px solid var(--line); }
.method {
  font-weight: 700; font-size: .78rem; min-width: 3.6rem; text-align: center; color: var(--card);
  border-radius: 3px; padding: .05rem .4rem; background: var(--other);
}
.method.get { background: var(--get); }
.method.post { background: var(--post); }
.path { background: none; font-weight: 600; }
.summary { color: var(--muted); }
.lock { font-size: .8rem; color: var(--muted); margin-left: auto; }
.body { padding: .3rem 1rem 1rem; }
.body h3 { font-size: .95rem; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; }
td, th {
  text-align: left; vertical-align: top; padding: .3rem .5rem; border-top: 1px solid var(--line);
}
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
.type {
  color: var(--accent); font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .88rem;
}
.req { color: var(--bad); font-weight: 700; }
.desc { color: var(--muted); font-size: .9rem; }
.note { color: var(--muted); font-size: .85rem; font-style: italic; }
.schema { margin: .2rem 0; }
.schema .schema { margin-left: .4rem; padding-left: .7rem; border-left: 2px solid var(--line); }
details.more > summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
.status { font-weight: 700; }
.status.ok { color: var(--get); }
.status.err { color: var(--bad); }
.try { border-top: 1px dashed var(--line); margin-top: 1rem; padding-top: .4rem; }
.try .grid { display: grid; grid-template-columns: max-content 1fr; gap: .35rem .8rem; }
.try .grid label { align-self: center; }
.try .grid input[type=text] { width: 100%; }
.error { color: var(--bad); }
</style>
</head>
<body>
<header>
  <h1 id="title">thalo API</h1>
  <span class="version" id="version"></span>
  <label>Bearer token
    <input id="token" type="password" autocomplete="off" size="28"
           placeholder="only sent from this page">
  </label>
</header>
<main id="app"><p>Loading <code>/openapi.json</code>…</p></main>
<noscript><p>This page needs JavaScript; the document itself is at
<code>/openapi.json</code>.</p></noscript>
<script>
"use strict";
(() => {
  const BASE = location.pathname.replace(/\\/docs\\/?$/, "");
  const METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];
  const app = document.getElementById("app");
  let spec = {};

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // Text with `code` spans, as the document's descriptions write them.
  const md = (text) => String(text || "").split("`").map(
    (part, i) => (i % 2 ? h("code", {}, part) : part));

  function lookup(ref) {
    if (typeof ref !== "string" || !ref.startsWith("#/")) return undefined;
    let node = spec;
    for (const raw of ref.slice(2).split("/")) {
      const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      if (node === null || typeof node !== "object" || !(key in node)) return undefined;
      node = node[key];
    }
    return node;
  }

  function resolve(obj) {
    for (let i = 0; i < 32 && obj && typeof obj === "object" && obj.$ref; i++) {
      const target = lookup(obj.$ref);
      if (target === undefined) break;
      obj = target;
    }
    return obj;
  }

  const refName = (ref) => ref.split("/").pop();
  const isNull = (s) => s && s.type === "null";
  const alternatives = (s) => (s && typeof s === "object" && (s.oneOf || s.anyOf)) || null;

  // One schema with allOf folded in: enough to list an envelope's properties.
  function merged(schema) {
    const s = resolve(schema);
    if (!s || typeof s !== "object" || !Array.isArray(s.allOf)) return s;
    const out = { ...s, properties: {}, required: [] };
    delete out.allOf;
    for (const part of [...s.allOf, { properties: s.properties, required: s.required }]) {
      const p = merged(part) || {};
      Object.assign(out.properties, p.properties || {});
      out.required.push(...(p.required || []));
      if (!out.type && p.type) out.type = p.type;
      if (!out.description && p.description) out.description = p.description;
    }
    return out;
  }

  function typeLabel(s) {
    if (s === undefined || s === true) return "any";
    if (s === false) return "nothing";
    if (s.$ref) return refName(s.$ref);
    if ("const" in s) return JSON.stringify(s.const);
    const alts = alternatives(s);
    if (alts) {
      const some = alts.filter((a) => !isNull(a));
      const text = some.map(typeLabel).join(" | ") || "null";
      if (some.length === alts.length) return text;
      return some.length > 1 ? `(${text})?` : `${text}?`;
    }
    if (s.allOf) return s.allOf.map(typeLabel).join(" & ");
    let text = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "any";
    if (text === "array") text = `[${typeLabel(s.items)}]`;
    const notes = [];
    for (const key of ["format", "contentEncoding", "contentMediaType"]) {
      if (s[key]) notes.push(s[key]);
    }
    if (s.minimum !== undefined && s.maximum !== undefined) {
      notes.push(`${s.minimum}..${s.maximum}`);
    } else if (s.minimum !== undefined) {
      notes.push(`≥ ${s.minimum}`);
    } else if (s.maximum !== undefined) {
      notes.push(`≤ ${s.maximum}`);
    }
    if (s.minLength) notes.push(`length ≥ ${s.minLength}`);
    if (s.maxItems !== undefined) notes.push(`≤ ${s.maxItems} items`);
    if (s.pattern) notes.push(`/${s.pattern}/`);
    if (s.default !== undefined) notes.push(`default ${JSON.stringify(s.default)}`);
    return notes.length ? `${text} (${notes.join(", ")})` : text;
  }

  // What is worth unfolding under a property: its array items or non-null alternative.
  function inner(s) {
    if (!s || typeof s !== "object") return s;
    if (s.type === "array" && s.items) return inner(s.items);
    const alts = alternatives(s);
    if (alts) {
      const some = alts.filter((a) => !isNull(a));
      return some.length === 1 ? inner(some[0]) : s;
    }
    return s;
  }

  function complex(s) {
    const t = merged(inner(s));
    if (!t || typeof t !== "object") return false;
    const alts = alternatives(t);
    if (alts) return alts.filter((a) => !isNull(a)).length > 1;
    return !!(t.properties && Object.keys(t.properties).length);
  }

  function schemaView(schema, depth = 0, seen = new Set()) {
    const box = h("div", { class: "schema" });
    if (schema && schema.$ref) {
      const name = refName(schema.$ref);
      if (seen.has(name) || depth > 10) {
        return h("div", { class: "schema" }, h("span", { class: "type" }, name), " (above)");
      }
      seen = new Set(seen).add(name);
      box.append(h("div", { class: "type" }, name));
    }
    const s = merged(schema);
    if (!s || typeof s !== "object") return box;
    if (s.description) box.append(h("div", { class: "desc" }, md(s.description)));
    const alts = alternatives(s);
    if (alts && alts.filter((a) => !isNull(a)).length > 1) {
      box.append(h("div", { class: "note" }, s.oneOf ? "one of:" : "any of:"));
      box.append(h("ul", {}, alts.map((alt) => h("li", {},
        complex(alt) ? schemaView(alt, depth + 1, seen) : h("span", { class: "type" },
          typeLabel(alt))))));
      return box;
    }
    const props = s.properties || {};
    if (Object.keys(props).length) {
      const required = new Set(s.required || []);
      box.append(h("table", {}, Object.entries(props).map(([name, prop]) => h("tr", {},
        h("td", {}, h("code", {}, name),
          required.has(name) ? h("span", { class: "req", title: "required" }, " *") : null),
        h("td", {}, h("span", { class: "type" }, typeLabel(prop)),
          prop && prop.description ? h("div", { class: "desc" }, md(prop.description)) : null,
          complex(prop) ? h("details", { class: "more" }, h("summary", {}, "fields"),
            schemaView(inner(prop), depth + 1, seen)) : null)))));
      if (s.additionalProperties === false) {
        box.append(h("div", { class: "note" }, "no other properties"));
      }
    } else if (!schema || !schema.$ref || s.type !== "object") {
      box.append(h("span", { class: "type" }, typeLabel(s)));
    } else {
      box.append(h("div", { class: "note" }, "an empty object"));
    }
    return box;
  }

  function contentView(content) {
    return Object.entries(content || {}).map(([type, media]) => h("div", {},
      h("div", { class: "note" }, type),
      media && media.schema ? schemaView(media.schema) : null));
  }

  function example(schema, depth = 0) {
    const s = merged(schema);
    if (!s || typeof s !== "object" || depth > 8) return null;
    if ("const" in s) return s.const;
    if (s.default !== undefined) return s.default;
    if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
    const alts = alternatives(s);
    if (alts) {
      const some = alts.filter((a) => !isNull(a));
      return some.length ? example(some[0], depth + 1) : null;
    }
    const type = Array.isArray(s.type) ? s.type[0] : s.type;
    if (type === "object" || s.properties) {
      const out = {};
      for (const name of s.required || []) {
        out[name] = example((s.properties || {})[name], depth + 1);
      }
      return out;
    }
    if (type === "array") return [];
    if (type === "integer" || type === "number") return Math.max(0, s.minimum ?? 0);
    if (type === "boolean") return false;
    if (type === "string") return s.format === "date-time" ? new Date().toISOString() : "";
    return null;
  }

  function securityText(op) {
    if (!Array.isArray(op.security) || !op.security.length) return "open";
    return op.security.some((req) => !Object.keys(req).length)
      ? "token if the server has a token file" : "bearer token required";
  }

  function tryView(path, method, op, params) {
    const fields = [];
    const grid = h("div", { class: "grid" });
    for (const p of params) {
      const s = p.schema || {};
      const input = s.type === "boolean"
        ? h("input", { type: "checkbox" })
        : h("input", { type: "text", placeholder: typeLabel(s) });
      fields.push([p, input]);
      grid.append(h("label", {}, h("code", {}, p.name), ` (${p.in})`,
        p.required ? h("span", { class: "req" }, " *") : null), input);
    }
    const body = resolve(op.requestBody);
    const content = (body && body.content) || {};
    let bodyInput = null;
    let files = null;
    if (content["application/json"]) {
      const sample = example(content["application/json"].schema);
      bodyInput = h("textarea", { spellcheck: "false" }, JSON.stringify(sample ?? {}, null, 2));
      grid.append(h("label", {}, "body (JSON)"), bodyInput);
    } else if (content["multipart/form-data"]) {
      const s = merged(content["multipart/form-data"].schema) || {};
      files = Object.keys(s.properties || {}).map((name) => [name, h("input", { type: "file" })]);
      for (const [name, input] of files) grid.append(h("label", {}, h("code", {}, name)), input);
    }
    const out = h("div", {});
    const send = async () => {
      out.replaceChildren(h("div", { class: "note" }, "sending…"));
      let url = BASE + path;
      const query = new URLSearchParams();
      const headers = { Accept: "application/json, application/problem+json, */*;q=0.1" };
      for (const [p, input] of fields) {
        const value = input.type === "checkbox" ? (input.checked ? "true" : "") : input.value;
        if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
        else if (value === "") continue;
        else if (p.in === "query") query.set(p.name, value);
        else if (p.in === "header") headers[p.name] = value;
      }
      if ([...query].length) url += "?" + query;
      const token = document.getElementById("token").value.trim();
      if (token) headers.Authorization = `Bearer ${token}`;
      const init = { method: method.toUpperCase(), headers };
      if (bodyInput) {
        headers["Content-Type"] = "application/json";
        init.body = bodyInput.value;
      } else if (files) {
        const form = new FormData();
        for (const [name, input] of files) if (input.files[0]) form.append(name, input.files[0]);
        init.body = form;
      }
      try {
        const response = await fetch(url, init);
        let text = await response.text();
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
        const shown = ["content-type", "etag", "location", "retry-after", "www-authenticate"]
          .filter((name) => response.headers.has(name))
          .map((name) => `${name}: ${response.headers.get(name)}`);
        out.replaceChildren(
          h("div", {}, h("span", { class: `status ${response.ok ? "ok" : "err"}` },
            `${response.status} ${response.statusText}`), " ", h("code", {}, url)),
          h("pre", { hidden: !shown.length }, shown.join("\\n")),
          h("pre", {}, text));
      } catch (error) {
        out.replaceChildren(h("div", { class: "error" }, String(error)));
      }
    };
    return h("div", { class: "try" }, h("h3", {}, "Try it"), grid,
      h("p", {}, h("button", { type: "button", onclick: send }, "Send")), out);
  }

  function operationBody(path, method, op, shared) {
    const params = [...shared, ...(op.parameters || [])].map(resolve);
    const parts = [];
    if (op.description) parts.push(h("p", {}, md(op.description)));
    parts.push(h("div", { class: "note" }, `operationId ${op.operationId || "-"}; `,
      securityText(op)));
    if (params.length) {
      parts.push(h("h3", {}, "Parameters"), h("table", {},
        h("tr", {}, h("th", {}, "name"), h("th", {}, "in"), h("th", {}, "schema"),
          h("th", {}, "description")),
        params.map((p) => h("tr", {},
          h("td", {}, h("code", {}, p.name), p.required ? h("span", { class: "req" }, " *") : null),
          h("td", {}, p.in),
          h("td", {}, h("span", { class: "type" }, typeLabel(p.schema))),
          h("td", { class: "desc" }, md(p.description))))));
    }
    const body = resolve(op.requestBody);
    if (body) {
      parts.push(h("h3", {}, "Request body", body.required ? "" : " (optional)"),
        body.description ? h("p", {}, md(body.description)) : null, contentView(body.content));
    }
    parts.push(h("h3", {}, "Responses"));
    for (const [status, raw] of Object.entries(op.responses || {})) {
      const response = resolve(raw) || {};
      const good = /^[23]/.test(status);
      const heads = Object.keys(response.headers || {});
      const rich = response.content && (good || status === "default");
      parts.push(h("details", { class: "more", open: good }, h("summary", {},
        h("span", { class: `status ${good ? "ok" : "err"}` }, status), " ",
        md(response.description),
        heads.length ? h("span", { class: "note" }, ` headers: ${heads.join(", ")}`) : null),
        rich ? contentView(response.content)
          : h("div", { class: "note" }, Object.keys(response.content || {}).join(", "))));
    }
    parts.push(tryView(path, method, op, params));
    return h("div", { class: "body" }, parts);
  }

  function operationView(path, method, op, shared) {
    const view = h("details", { class: "op", id: `op-${op.operationId || method + path}` },
      h("summary", {}, h("span", { class: `method ${method}` }, method.toUpperCase()),
        h("code", { class: "path" }, path), h("span", { class: "summary" }, op.summary || ""),
        h("span", { class: "lock" }, securityText(op))));
    view.addEventListener("toggle", () => {
      if (view.open && !view.dataset.built) {
        view.dataset.built = "1";
        view.append(operationBody(path, method, op, shared));
      }
    });
    view.dataset.search = [path, op.summary, op.operationId, ...(op.tags || [])]
      .join(" ").toLowerCase();
    return view;
  }

  function render() {
    const info = spec.info || {};
    document.title = `${info.title || "API"} — API`;
    document.getElementById("title").textContent = `${info.title || "API"} API`;
    document.getElementById("version").textContent =
      `${info.version || ""} · OpenAPI ${spec.openapi || "?"}`;
    const groups = new Map((spec.tags || []).map((tag) => [tag.name, { tag, ops: [] }]));
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        for (const name of op.tags && op.tags.length ? op.tags : ["other"]) {
          if (!groups.has(name)) groups.set(name, { tag: { name }, ops: [] });
          groups.get(name).ops.push(operationView(path, method, op, item.parameters || []));
        }
      }
    }
    const filter = h("input", { class: "filter", type: "search",
      placeholder: "Filter operations (path, name, tag)…" });
    const sections = [...groups.values()].filter((g) => g.ops.length).map((g) => h("section",
      { class: "tag", id: `tag-${g.tag.name}` }, h("h2", {}, g.tag.name),
      g.tag.description ? h("p", {}, md(g.tag.description)) : null, g.ops));
    filter.addEventListener("input", () => {
      const words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
      for (const section of sections) {
        let shown = 0;
        for (const op of section.querySelectorAll("details.op")) {
          const hit = words.every((w) => op.dataset.search.includes(w));
          op.hidden = !hit;
          shown += hit;
        }
        section.hidden = !shown;
      }
    });
    app.replaceChildren(h("p", { class: "intro" }, md(info.description)), filter, ...sections);
  }

  fetch(BASE + "/openapi.json", { headers: { Accept: "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
      return response.json();
    })
    .then((doc) => { spec = doc; render(); })
    .catch((error) => app.replaceChildren(
      h("p", { class: "error" }, `Could not load the API document: ${error.message}`)));
})();
</script>
</body>
</html>
"""
