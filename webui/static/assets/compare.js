// Same-window comparisons (canary, A/B, flags) and experiment reports.
import * as api from "./api.js";
import { h, table, td } from "./dom.js";
import * as fmt from "./fmt.js";
import * as charts from "./charts.js";
import { badge, figure, select, environments, pickEnvironment, unitLink } from "./common.js";
import { compareBody } from "./units.js";
import { teamOptions } from "./dora.js";

function hoursParam(params) {
  return Math.min(Math.max(parseInt(params.get("hours") || "24", 10) || 24, 1), 168);
}

export async function compare(params) {
  const service = params.get("service") || "";
  const hours = hoursParam(params);
  const now = new Date();
  const start = new Date(now.getTime() - hours * 3600000);
  const dimension = params.get("dimension") || "version";
  const control = params.get("control") || "";
  const treatment = params.get("treatment") || "";
  // With the whole question in the address, the comparison is asked at
  // once, beside the services the form lists.
  const asked = service && control && treatment && params.get("environment")
    ? api.get("/v1/compare", { service, environment: params.get("environment"), dimension, control, treatment, start_time: start, end_time: now })
    : null;
  if (asked) asked.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  const all = (await api.get("/v1/services")).services;
  const envs = environments(all);
  const env = pickEnvironment(params, envs);
  const services = [...new Set(all.filter((u) => u.environment === env).map((u) => u.service))].sort();
  const form = h("form", { class: "filters", "aria-label": "What to compare" },
    select("environment", "Environment", envs, env),
    select("service", "Service", [["", "choose a service"], ...services], service),
    select("hours", "Range", [["1", "1 hour"], ["6", "6 hours"], ["24", "24 hours"], ["72", "3 days"], ["168", "7 days"]], String(hours)),
    h("button", { type: "submit" }, "Show cohorts"));
  const out = [h("h1", {}, service ? `Compare: ${service} in ${env}` : "Compare cohorts"), form];
  if (!service) {
    out.push(h("p", {}, "Pick a service to see its cohorts — versions, feature-flag variants and recorded attributes — and compare two side by side in the minutes both served."));
    return out;
  }
  if (control && treatment) {
    const c = await (asked || api.get("/v1/compare", { service, environment: env, dimension, control, treatment, start_time: start, end_time: now }));
    out.push(h("h2", {}, `${dimension}: ${control} (control) against ${treatment}`), compareBody(c));
    return out;
  }
  const cohorts = await api.get("/v1/cohorts", { service, environment: env, start_time: start, end_time: now });
  const dims = cohorts.dimensions || [];
  out.push(h("h2", {}, "Cohorts"));
  if (!dims.length) {
    out.push(h("p", { class: "muted" }, "No cohorts in this range."));
    return out;
  }
  for (const d of dims) {
    const values = [...d.values].sort((a, b) => b.requests - a.requests);
    const base = `/ui/compare?environment=${encodeURIComponent(env)}&service=${encodeURIComponent(service)}&hours=${hours}&dimension=${encodeURIComponent(d.dimension)}`;
    out.push(h("h3", {}, d.dimension),
      table(["Value", { text: "Requests", class: "num" }, "Compare"], values.map((v, i) => h("tr", {}, td(v.value),
        td(figure(v.requests, fmt.int(v.requests)), { class: "num" }),
        td(i === 0 ? "(largest: the control)" : h("a", { href: `${base}&control=${encodeURIComponent(values[0].value)}&treatment=${encodeURIComponent(v.value)}` },
          `${v.value} against ${values[0].value}`)))), { caption: `Cohorts of ${d.dimension}` }));
  }
  return out;
}

function decisionName(d) {
  return fmt.enumName(d, "EXPERIMENT_DECISION_") || "INCONCLUSIVE";
}

export async function experiments(params) {
  const [all, teams] = await Promise.all([api.get("/v1/experiments").then((r) => r.experiments || []), teamOptions()]);
  const team = params.get("team") || "";
  const t = teams.find((x) => x.name === team);
  const list = t ? all.filter((e) => t.services.includes(e.experiment.unit.service)) : all;
  return [
    h("h1", {}, "Experiments" + (team ? ` · team ${team}` : "")),
    teams.length ? h("form", { class: "filters", "aria-label": "Scope" },
      select("team", "Team", [["", "all teams"], ...teams.map((x) => x.name)], team), h("button", { type: "submit" }, "Show")) : null,
    list.length ? table(["Experiment", "Unit", "Dimension", "Status", "Decision", "Summary"], list.map((e) => h("tr", { "data-experiment": e.experiment.id },
      td(h("a", { href: `/ui/experiments/${encodeURIComponent(e.experiment.id)}` }, e.experiment.id)),
      td(unitLink(e.experiment.unit.service, e.experiment.unit.environment)), td(e.experiment.dimension),
      td(fmt.words(fmt.enumName(e.status, "EXPERIMENT_STATUS_"))), td(badge(decisionName(e.decision))), td(e.summary || fmt.DASH))),
      { caption: "Experiments" })
      : h("p", {}, "No experiments are defined (changelens-worker --experiments-dir; docs/experiments.md)."),
  ];
}

const UNITS = {
  cpu_seconds_per_1000_requests: [1, "CPU s / 1000 req"],
  byte_seconds_per_1000_requests: [1 / 1048576, "MiB·s / 1000 req"],
  bytes: [1, "B"],
};

function value(m, v) {
  if (m.unit === "ratio" || m.unit === "rate" || m.unit === "share") return fmt.pct(v, 2);
  if (m.unit === "ms") return fmt.ms(v);
  const [scale, name] = UNITS[m.unit] || [1, m.unit || ""];
  return typeof v === "number" ? fmt.num(v * scale, v * scale >= 100 ? 0 : 2) + (name ? " " + name : "") : fmt.DASH;
}

export async function experiment(params, id) {
  const r = await api.get(`/v1/experiments/${encodeURIComponent(id)}/report`);
  const e = r.experiment;
  const decision = decisionName(r.decision);
  const srm = r.sample_ratio;
  return [
    h("h1", {}, `Experiment ${e.id} `, badge(decision)),
    h("p", {}, e.description || ""),
    h("div", { class: "explain " + (decision === "SHIP" ? "good" : decision === "DONT_SHIP" ? "bad" : "") }, r.summary || r.reason || "No decision yet."),
    h("p", {}, `${fmt.words(fmt.enumName(r.status, "EXPERIMENT_STATUS_"))}, day ${fmt.num(r.elapsed_days, 1)} of ${e.planned_duration}; `,
      `${e.dimension} on `, unitLink(e.unit.service, e.unit.environment), ` in ${e.unit.environment}; primary metric ${e.primary_metric.metric}.`),
    r.plan && r.plan.message ? h("p", { class: "muted" }, "Plan: " + r.plan.message) : null,
    srm ? [h("h2", {}, "Sample ratio"), h("p", {}, srm.mismatch ? badge("FAILED") : badge("PASSED"), ` chi-square p = ${fmt.num(srm.p_value, 4)}`),
      table(["Variant", { text: "Units", class: "num" }, { text: "Expected share", class: "num" }, { text: "Observed share", class: "num" }],
        (srm.counts || []).map((c) => h("tr", {}, td(c.variant), td(figure(c.units, fmt.int(c.units)), { class: "num" }),
          td(fmt.pct(c.expected_share), { class: "num" }), td(fmt.pct(c.observed_share), { class: "num" }))), { caption: "Sample ratio" })] : null,
    (r.treatments || []).map((t) => [
      h("h2", {}, `Treatment ${t.treatment} `, badge(decisionName(t.decision))),
      h("p", {}, t.summary || t.reason || ""),
      charts.forest((t.metrics || []).map((m) => ({ label: m.label || m.metric, value: m.relative_effect,
        low: m.sequential ? m.sequential_low : m.relative_low, high: m.sequential ? m.sequential_high : m.relative_high,
        tone: ["WORSE", "FAILED"].includes(m.verdict) ? "bad" : ["BETTER", "PASSED"].includes(m.verdict) ? "good" : "" })),
      `Treatment ${t.treatment} against control: relative effect with intervals`),
      table(["Metric", "Role", { text: "Control", class: "num" }, { text: "Treatment", class: "num" }, { text: "Relative effect", class: "num" }, { text: "Interval", class: "num" }, "Verdict", "Note"],
        (t.metrics || []).map((m) => h("tr", { "data-metric": m.metric },
          td(m.label || m.metric), td(m.role), td(figure(m.control_value, value(m, m.control_value)), { class: "num" }),
          td(figure(m.treatment_value, value(m, m.treatment_value)), { class: "num" }),
          td(figure(m.relative_effect, fmt.signedPct(m.relative_effect)), { class: "num" }),
          td(`${fmt.signedPct(m.relative_low)} … ${fmt.signedPct(m.relative_high)}`, { class: "num" }),
          td(badge(m.verdict || "INCONCLUSIVE")), td([m.cuped ? "CUPED. " : "", m.note || ""]))), { caption: `Metrics of treatment ${t.treatment}` }),
    ]),
  ];
}
