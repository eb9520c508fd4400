/**
 * The analytics rules in force, as the gateway gives them (GET /v1/rules?format=json:
 * `{yaml, streams: [{pattern, anchor?, lines?, zones?, ...}]}`, patterns in document order),
 * and saving an edited document back (WS /v1/rules, which takes YAML text).
 *
 * The first pattern that matches a stream id is the one that applies (fnmatch, as the
 * analytics match it). A rule drawn in the viewer is added to that pattern, or to an entry
 * for the stream alone; the rest of the document is saved back as it was (comments of a
 * hand-written file are not kept: the document is written out again).
 */
import { withToken } from "./auth.js";

const POLL_MS = 5000;

/** Python's fnmatch.translate, for the patterns of a rules document: a RegExp, whole-id. */
export function globToRegExp(pattern) {
  let out = "";
  for (let i = 0; i < pattern.length; i += 1) {
    const c = pattern[i];
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      let j = i + 1;
      if (pattern[j] === "!") j += 1;
      if (pattern[j] === "]") j += 1;
      while (j < pattern.length && pattern[j] !== "]") j += 1;
      if (j >= pattern.length) {
        out += "\\[";
      } else {
        let stuff = pattern.slice(i + 1, j).replaceAll("\\", "\\\\");
        if (stuff[0] === "!") stuff = "^" + stuff.slice(1);
        else if (stuff[0] === "^" || stuff[0] === "[") stuff = "\\" + stuff;
        out += `[${stuff}]`;
        i = j;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  }
  return new RegExp(`^(?:${out})$`, "s");
}

export function globMatches(pattern, streamId) {
  return globToRegExp(pattern).test(streamId);
}

/** The entry of `doc` that applies to `streamId` (the first match), or null. */
export function rulesFor(doc, streamId) {
  if (!doc) return null;
  return doc.streams.find((entry) => globMatches(entry.pattern, streamId)) || null;
}

/** Names of the lines and zones of an entry. */
export function ruleNames(entry) {
  return [...(entry?.lines || []), ...(entry?.zones || [])].map((r) => r.name);
}

/**
 * `doc` with one more line or zone (a copy; `doc` is not changed).
 * @param {{streams: object[]}} doc the document in force (`{streams: []}` when none)
 * @param {string} streamId the stream it was drawn on
 * @param {{kind: "line"|"zone", rule: object, scope: string}} change scope: the pattern to
 *   add it to, or "" for the stream alone (a new entry for it, a copy of the pattern that
 *   applied so far, so its other rules keep applying, placed before that pattern)
 * @returns {{doc: object, pattern: string} | {error: string}}
 */
export function withRule(doc, streamId, { kind, rule, scope }) {
  const streams = structuredClone(doc?.streams || []);
  const key = kind === "zone" ? "zones" : "lines";
  let entry;
  if (scope) {
    entry = streams.find((e) => e.pattern === scope);
    if (!entry) return { error: `no pattern ${JSON.stringify(scope)} in the rules any more` };
  } else {
    entry = streams.find((e) => e.pattern === streamId);
    if (!entry) {
      const at = streams.findIndex((e) => globMatches(e.pattern, streamId));
      entry = at >= 0 ? { ...structuredClone(streams[at]), pattern: streamId } : { pattern: streamId };
      streams.splice(at >= 0 ? at : streams.length, 0, entry);
    }
  }
  if (ruleNames(entry).includes(rule.name)) {
    return { error: `the name ${JSON.stringify(rule.name)} is already used in ${JSON.stringify(entry.pattern)}` };
  }
  entry[key] = [...(entry[key] || []), rule];
  return { doc: { streams }, pattern: entry.pattern };
}

// ---- YAML out: the document as block YAML, scalars in JSON's syntax (a subset of YAML's) ----

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const YAML11_WORDS = new Set(["y", "n", "yes", "no", "on", "off", "true", "false", "null"]);

function yamlKey(key) {
  return PLAIN_KEY.test(key) && !YAML11_WORDS.has(key.toLowerCase()) ? key : JSON.stringify(key);
}

function number(value) {
  const text = String(value);
  // PyYAML (YAML 1.1) reads 1e-05 as a string: write such numbers out in full.
  return /e/i.test(text) && Number.isFinite(value) ? value.toFixed(12).replace(/\.?0+$/, "") : text;
}

/** One value in flow style: [0.5, 0], "car", {"a": 1}. */
export function flow(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") return number(value);
  if (typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(flow).join(", ")}]`;
  const items = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${flow(v)}`);
  return `{${items.join(", ")}}`;
}

const isMapping = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function block(mapping, indent) {
  const pad = " ".repeat(indent);
  const lines = [];
  for (const [key, value] of Object.entries(mapping)) {
    if (isMapping(value) && Object.keys(value).length) {
      lines.push(`${pad}${yamlKey(key)}:`, ...block(value, indent + 2));
    } else if (Array.isArray(value) && value.length && value.every(isMapping)) {
      lines.push(`${pad}${yamlKey(key)}:`);
      for (const item of value) {
        const inner = Object.keys(item).length ? block(item, indent + 4) : [`${pad}    {}`];
        inner[0] = `${pad}  - ${inner[0].trimStart()}`;
        lines.push(...inner);
      }
    } else {
      lines.push(`${pad}${yamlKey(key)}: ${flow(value)}`);
    }
  }
  return lines;
}

/** A rules document (the JSON form: patterns in a list) as YAML text for WS /v1/rules. */
export function toYaml(doc) {
  if (!doc.streams.length) return "streams: {}\n";
  const lines = ["streams:"];
  for (const { pattern, ...entry } of doc.streams) {
    if (Object.keys(entry).length) lines.push(`  ${JSON.stringify(pattern)}:`, ...block(entry, 4));
    else lines.push(`  ${JSON.stringify(pattern)}: {}`);
  }
  return lines.join("\n") + "\n";
}

// ---- the gateway ----

/**
 * The rules in force, read again every few seconds (rules saved elsewhere, or through this
 * page, show up without a reload). `state.status`: "loading", "ok", "none" (nothing saved
 * through the gateway), "forbidden" (the token lacks the admin scope), "error".
 */
export class RulesSource {
  constructor(httpBase, onChange) {
    this.url = `${httpBase}/v1/rules?format=json`;
    this.onChange = onChange;
    this.state = { status: "loading", doc: { streams: [] }, yaml: "", message: "" };
    this.timer = null;
  }

  start() {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), POLL_MS);
  }

  async refresh() {
    let next;
    try {
      const response = await fetch(withToken(this.url), { cache: "no-store" });
      if (response.status === 404) next = { status: "none", doc: { streams: [] }, yaml: "", message: "" };
      else if (response.status === 403 || response.status === 401) {
        next = {
          status: "forbidden", doc: { streams: [] }, yaml: "",
          message: "Lines and zones are not drawn: reading the rules needs a token with the admin scope.",
        };
        clearInterval(this.timer); // it will not change without a new token (a reload)
      } else if (!response.ok) {
        return; // keep what is drawn; try again at the next poll
      } else {
        const body = await response.json();
        next = { status: "ok", doc: { streams: body.streams || [] }, yaml: body.yaml || "", message: body.error || "" };
      }
    } catch {
      return; // the gateway is away: keep what is drawn
    }
    const changed = next.status !== this.state.status || next.yaml !== this.state.yaml;
    this.state = next;
    if (changed) this.onChange(next);
  }
}

/**
 * Save a whole rules document (YAML) through WS /v1/rules: resolves with the gateway's
 * `{"type":"rules_saved","streams":n}`, rejects with its error message (or why no answer).
 */
export function saveRules(wsBase, yaml, { timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(withToken(`${wsBase}/v1/rules`));
    let sent = false;
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.onclose = null;
      ws.close();
      fn(value);
    };
    const timer = setTimeout(() => finish(reject, new Error("the gateway did not answer")), timeoutMs);
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "hello") {
        ws.send(yaml);
        sent = true;
      } else if (message.type === "rules_saved") finish(resolve, message);
      else if (message.type === "error") finish(reject, new Error(message.message || message.code));
    };
    ws.onclose = () =>
      finish(
        reject,
        new Error(
          sent
            ? "the connection closed before the gateway answered"
            : "the gateway refused to save rules (a token with the admin scope is needed)",
        ),
      );
  });
}
