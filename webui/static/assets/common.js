// Pieces every page uses: verdict badges, trace links, time ranges.
import { h } from "./dom.js";
import * as fmt from "./fmt.js";

let settings = { trace_url: "" };
export function setSettings(s) {
  settings = s;
}

// tone is how a status reads: bad, good, warn, dep (a dependency's fault)
// or neutral.
const tones = {
  DEGRADED: "bad", IMPROVED: "good", NO_CHANGE: "neutral", PENDING: "warn", INSUFFICIENT_DATA: "neutral",
  CAUSED_BY_DEPENDENCY: "dep", WORSE: "bad", BETTER: "good", NO_DIFFERENCE: "neutral",
  PASS: "good", FAIL: "bad", INCONCLUSIVE: "neutral", SHIP: "good", DONT_SHIP: "bad",
  FAILED: "bad", PASSED: "good", UNRESOLVED: "neutral",
};

export function tone(name) {
  return tones[name] || "neutral";
}

export function badge(name) {
  const label = fmt.words(name) || "unknown";
  return h("span", { class: "badge b-" + tone(name), "data-status": name }, label);
}

export function verdictOf(d) {
  return fmt.enumName(d.verdict, "VERDICT_");
}

// traceLink links a trace ID to the configured trace UI, or shows it.
export function traceLink(id) {
  if (!id) return fmt.DASH;
  const code = h("code", {}, id.slice(0, 16) + (id.length > 16 ? "…" : ""));
  if (!settings.trace_url) return h("span", { title: id }, code);
  // The visible (shortened) ID is the link's name; the whole ID is its title.
  return h("a", { class: "trace", href: settings.trace_url.replaceAll("{trace_id}", encodeURIComponent(id)), rel: "noopener", target: "_blank",
    title: "trace " + id }, code);
}

// figure writes a number with its raw value kept for the tests.
export function figure(value, text, attrs = {}) {
  return h("span", { ...attrs, "data-value": typeof value === "number" ? String(value) : "" }, text);
}

export function daysAgo(n, now = new Date()) {
  return new Date(now.getTime() - n * 86400000);
}

export function unitLink(service, environment) {
  return h("a", { href: `/ui/units/${encodeURIComponent(service)}?environment=${encodeURIComponent(environment)}` }, service);
}

export function deploymentLink(id, text) {
  return h("a", { href: `/ui/deployments/${encodeURIComponent(id)}` }, text || id);
}

export function select(name, label, options, value) {
  const id = "f-" + name;
  return h("label", { for: id }, label,
    h("select", { id, name }, options.map((o) => {
      const [v, t] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value }, t);
    })));
}

export function environments(services) {
  return [...new Set(services.map((u) => u.environment))].sort();
}

export function pickEnvironment(params, envs) {
  const e = params.get("environment");
  if (e) return e;
  return envs.includes("production") ? "production" : envs[0] || "production";
}

// causeCell says what caused a regression: the unit's own deployment, a
// neighbour's (linked) or a flag variant.
export function causeCell(c) {
  if (!c || !c.kind || c.kind === "CAUSE_KIND_UNSPECIFIED") return fmt.DASH;
  const kind = fmt.words(fmt.enumName(c.kind, "CAUSE_KIND_"));
  if (c.flag) return `${kind}: ${c.flag} = ${c.variant}`;
  if (c.deployment_id) return [kind + ": ", deploymentLink(c.deployment_id, `${c.service} ${c.version}`)];
  return kind;
}

// range marks what a block of figures was asked for, in words for the
// reader and as attributes, so a test can ask the API the same.
export function rangeAttrs(start, end) {
  return { "data-start": start.toISOString(), "data-end": end.toISOString() };
}
