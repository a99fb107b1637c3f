// DORA for an environment, a team or a service; teams; a team's
// retrospective.
import * as api from "./api.js";
import { h, table, td } from "./dom.js";
import * as fmt from "./fmt.js";
import * as charts from "./charts.js";
import { badge, tone, figure, select, environments, pickEnvironment, deploymentLink, unitLink, causeCell, rangeAttrs } from "./common.js";

// The five metrics: where each is in a DORAFigures answer, how it is
// written, whether more is better, and the team target's name and unit.
export const METRICS = [
  { key: "deployment_frequency", label: "Deployment frequency", field: "deployment_frequency_per_day", format: fmt.perDay,
    known: (f) => f.deployment_count >= 0, target: (t) => t.deployment_frequency_per_day },
  { key: "lead_time", label: "Lead time for changes (median)", field: "lead_time_median_seconds", format: fmt.duration,
    known: (f) => f.lead_time_sample_count > 0, target: (t) => hours(t.lead_time_hours) },
  { key: "change_failure_rate", label: "Change failure rate", field: "change_failure_rate", format: (v) => fmt.pct(v),
    known: (f) => f.change_count > 0, target: (t) => t.change_failure_rate },
  { key: "failed_deployment_recovery_time", label: "Failed deployment recovery time (median)", field: "time_to_restore_median_seconds", format: fmt.duration,
    known: (f) => f.restore_sample_count > 0, target: (t) => hours(t.recovery_time_hours) },
  { key: "rework_rate", label: "Rework rate", field: "rework_rate", format: (v) => fmt.pct(v),
    known: (f) => f.deployment_count > 0, target: (t) => t.rework_rate },
];

function hours(v) {
  return typeof v === "number" ? v * 3600 : null;
}

function valueOf(m, f) {
  return f && m.known(f) ? f[m.field] : null;
}

// doraTiles writes the five figures of one range, with the benchmark.
export function doraTiles(f, targets, start, end) {
  return h("div", { class: "tiles", ...(start ? rangeAttrs(start, end) : {}) }, METRICS.map((m) => {
    const v = valueOf(m, f);
    const b = (f.benchmarks || []).find((x) => x.metric === m.key);
    const target = targets ? m.target(targets) : null;
    return h("div", { class: "tile", "data-dora": m.key },
      h("div", { class: "label" }, m.label),
      h("div", { class: "value" }, figure(v === null ? undefined : v, m.format(v))),
      h("div", { class: "sub" }, sampleNote(m, f),
        b && typeof b.score === "number" ? ` · score ${b.score.toFixed(1)}/10 (${b.edition})` : "",
        b && b.tier && !["TIER_UNKNOWN", "TIER_UNSPECIFIED"].includes(b.tier) ? ` · ${fmt.words(fmt.enumName(b.tier, "TIER_"))} (${b.edition})` : "",
        typeof target === "number" ? ` · target ${m.format(target)}` : ""));
  }));
}

function sampleNote(m, f) {
  switch (m.key) {
    case "deployment_frequency": return `${f.deployment_count} deployments`;
    case "lead_time": return `${f.lead_time_sample_count} changes with a commit`;
    case "change_failure_rate": return `${f.failed_change_count} of ${f.change_count} changes`;
    case "failed_deployment_recovery_time": return `${f.restore_sample_count} recoveries`;
    default: return `${f.rework_count} of ${f.deployment_count} deployments`;
  }
}

let teamCache = null;
// teamOptions is the teams mapping (GET /v1/teams), read once per page load.
export async function teamOptions() {
  if (!teamCache) teamCache = (await api.get("/v1/teams")).teams || [];
  return teamCache;
}

function mondayUTC(d) {
  const x = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  x.setUTCDate(x.getUTCDate() - ((x.getUTCDay() + 6) % 7));
  return x;
}

function quarterStart(d, back) {
  const q = Math.floor(d.getUTCMonth() / 3) - back;
  return new Date(Date.UTC(d.getUTCFullYear(), q * 3, 1));
}

export function quarterName(d) {
  return `${d.getUTCFullYear()}-Q${Math.floor(d.getUTCMonth() / 3) + 1}`;
}

export async function dora(params) {
  const [all, teams] = await Promise.all([api.get("/v1/services"), teamOptions()]);
  const envs = environments(all.services);
  const env = pickEnvironment(params, envs);
  const team = params.get("team") || "";
  const service = params.get("service") || "";
  const edition = params.get("edition") || "2025";
  const now = new Date();
  const weeksFrom = mondayUTC(new Date(now.getTime() - 25 * 7 * 86400000));
  const quartersFrom = quarterStart(now, 3);
  const scope = { environment: env, team, service, edition };
  const [weekly, quarterly] = await Promise.all([
    api.get("/v1/dora", { ...scope, start_time: weeksFrom, end_time: now, interval: "INTERVAL_WEEK" }),
    api.get("/v1/dora", { ...scope, start_time: quartersFrom, end_time: now, interval: "INTERVAL_QUARTER" }),
  ]);
  const t = teams.find((x) => x.name === team);
  const targets = t ? t.targets || {} : null;
  const services = [...new Set(all.services.filter((u) => u.environment === env && (!t || t.services.includes(u.service))).map((u) => u.service))].sort();
  const scopeName = service ? `service ${service}` : team ? `team ${team}` : "all services";
  return [
    h("h1", {}, `DORA: ${env}, ${scopeName}`),
    h("form", { class: "filters", "aria-label": "Scope" },
      select("environment", "Environment", envs, env),
      teams.length ? select("team", "Team", [["", "all teams"], ...teams.map((x) => x.name)], team) : null,
      select("service", "Service", [["", "all services"], ...services], service),
      select("edition", "Benchmark", [["2025", "DORA 2025"], ["2024", "DORA 2024"], ["2023", "DORA 2023"], ["2021", "DORA 2021"]], edition),
      h("button", { type: "submit" }, "Show")),
    team ? h("p", {}, h("a", { href: `/ui/retro/${encodeURIComponent(team)}/${quarterName(now)}?environment=${encodeURIComponent(env)}` }, `Retrospective of ${quarterName(now)} for ${team}`)) : null,
    h("h2", {}, `Last 26 weeks (since ${fmt.day(weeksFrom)})`),
    doraTiles(weekly.summary, targets, weeksFrom, now),
    h("div", { class: "grid2" }, METRICS.map((m) => h("section", { class: "card", "aria-label": m.label, "data-trend": m.key },
      h("h3", {}, m.label),
      charts.line(weekly.intervals.map((f) => ({ x: fmt.day(f.start_time), y: valueOf(m, f) })),
        { label: `${m.label} per week`, format: m.format, target: targets ? m.target(targets) : null }),
      charts.bars(quarterly.intervals.map((f) => ({ x: quarterName(new Date(f.start_time)), y: valueOf(m, f) })),
        { label: `${m.label} per quarter`, format: m.format, target: targets ? m.target(targets) : null }),
      h("details", {}, h("summary", {}, "Figures per week"),
        table(["Week of", { text: m.label, class: "num" }], weekly.intervals.map((f) => h("tr", {}, td(fmt.day(f.start_time)),
          td(figure(valueOf(m, f) === null ? undefined : valueOf(m, f), m.format(valueOf(m, f))), { class: "num" }))), { caption: `${m.label} per week` }))))),
    h("p", { class: "muted" }, "Lead time counts deployments whose commit is known; recovery time counts failed deployments that were restored. Definitions: docs/dora.md."),
  ];
}

export async function teams(params) {
  const list = await teamOptions();
  const all = (await api.get("/v1/services")).services;
  const env = pickEnvironment(params, environments(all));
  const q = quarterName(new Date());
  const prev = quarterName(quarterStart(new Date(), 1));
  if (!list.length) {
    return [h("h1", {}, "Teams"), h("p", {}, "No teams are configured: start changelens-api with --teams-file (docs/teams.md).")];
  }
  return [
    h("h1", {}, "Teams"),
    h("p", {}, "Figures are kept per team and per service, never per person."),
    table(["Team", "Services", "Focus", "DORA", "Retrospectives"], list.map((t) => h("tr", { "data-team": t.name },
      td(h("strong", {}, t.name)), td(t.services.map((s, i) => [i ? ", " : "", unitLink(s, env)])),
      td((t.focus || []).map((f) => `${f.period}: ${fmt.words(f.metric)}`).join("; ") || fmt.DASH),
      td(h("a", { href: `/ui/dora?environment=${encodeURIComponent(env)}&team=${encodeURIComponent(t.name)}` }, "DORA")),
      td(h("a", { href: `/ui/retro/${encodeURIComponent(t.name)}/${q}?environment=${encodeURIComponent(env)}` }, q), " · ",
        h("a", { href: `/ui/retro/${encodeURIComponent(t.name)}/${prev}?environment=${encodeURIComponent(env)}` }, prev)))),
      { caption: "Teams" }),
  ];
}

function trendBadge(t) {
  const name = { IMPROVED: "IMPROVED", WORSENED: "DEGRADED", UNCHANGED: "NO_CHANGE", NO_DATA: "INSUFFICIENT_DATA" }[t] || t;
  return h("span", { class: "badge b-" + tone(name), "data-trend": t }, fmt.words(t));
}

function metricFormat(key) {
  return (METRICS.find((m) => m.key === key) || { format: (v) => fmt.num(v) }).format;
}

export async function retro(params, team, period) {
  const env = params.get("environment") || "production";
  const r = await api.get(`/v1/teams/${encodeURIComponent(team)}/retrospectives/${encodeURIComponent(period)}`, { environment: env });
  const md = r.markdown || "";
  const mdLink = h("a", { href: URL.createObjectURL(new Blob([md], { type: "text/markdown" })), download: `retro-${team}-${period}.md` }, "Download as Markdown");
  return [
    h("h1", {}, `Retrospective: ${team}, ${period}`),
    h("p", {}, `${env}, ${fmt.day(r.start_time)} to ${fmt.day(r.end_time)}, against ${r.previous_period} (${fmt.day(r.previous_start_time)} to ${fmt.day(r.previous_end_time)}). `,
      "Stable link: ", h("a", { href: r.link }, location.origin + r.link)),
    h("p", { class: "noprint" }, h("button", { type: "button", onClick: () => window.print() }, "Print or save as PDF"), " ", mdLink),
    r.focus_metric ? h("div", { class: "explain" }, "Focus this quarter: ", h("strong", {}, fmt.words(r.focus_metric))) : null,
    h("h2", {}, "The five figures"),
    table(["Metric", { text: period, class: "num" }, { text: r.previous_period, class: "num" }, { text: "Change", class: "num" }, "Trend", { text: "Target", class: "num" }, "Target met"],
      (r.metrics || []).map((m) => {
        const f = metricFormat(m.metric);
        const focus = m.metric === r.focus_metric;
        return h("tr", { "data-metric": m.metric },
          td([fmt.words(m.metric), focus ? [" ", h("span", { class: "badge b-warn" }, "focus")] : null]),
          td(figure(m.current ?? undefined, f(m.current)), { class: "num" }), td(figure(m.previous ?? undefined, f(m.previous)), { class: "num" }),
          td(fmt.signedPct(m.change), { class: "num" }), td(trendBadge(m.trend)),
          td(m.target === null || m.target === undefined ? fmt.DASH : f(m.target), { class: "num" }),
          td(m.target_met === null || m.target_met === undefined ? fmt.DASH : m.target_met ? badge("PASSED") : badge("FAILED")));
      }), { caption: "DORA figures against the previous period and the team's targets" }),
    h("h2", {}, `Deployments that failed (${(r.failed_deployments || []).length})`),
    (r.failed_deployments || []).length ? table(["Deployed", "Service", "Version", "Why", "Cause", "Recovered after"],
      r.failed_deployments.map((d) => h("tr", { "data-deployment": d.deployment_id }, td(fmt.time(d.deploy_time)), td(d.service),
        td(deploymentLink(d.deployment_id, `${d.previous_version ? d.previous_version + " → " : ""}${d.version}`)),
        td([(d.failure_reasons || []).map((x) => fmt.words(fmt.enumName(x, "FAILURE_REASON_"))).join(", "), d.explanation ? h("div", { class: "muted" }, d.explanation) : null]),
        td(causeCell(d.cause)), td(d.recovery_seconds === null || d.recovery_seconds === undefined ? "not recovered" : fmt.duration(d.recovery_seconds)))),
      { caption: "Failed deployments" }) : h("p", {}, "None."),
    h("h2", {}, `Experiments concluded (${(r.experiments || []).length})`),
    (r.experiments || []).length ? table(["Experiment", "Service", "Decision", "Summary"], r.experiments.map((e) => h("tr", {},
      td(h("a", { href: `/ui/experiments/${encodeURIComponent(e.id)}` }, e.id)), td(e.service), td(badge(e.decision)), td(e.summary || fmt.DASH))),
      { caption: "Experiments" }) : h("p", {}, "None."),
    h("details", { class: "noprint" }, h("summary", {}, "The Markdown"), h("pre", {}, md)),
  ];
}
