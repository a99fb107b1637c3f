// Units and their deployments: the overview, a unit's timeline, a
// deployment's impact, and the gate's answers.
import * as api from "./api.js";
import { h, table, td } from "./dom.js";
import * as fmt from "./fmt.js";
import * as charts from "./charts.js";
import { badge, tone, verdictOf, traceLink, figure, daysAgo, unitLink, deploymentLink, select, environments, pickEnvironment, causeCell } from "./common.js";
import { doraTiles, teamOptions } from "./dora.js";

const MAX_PAGES = 5;

// deployments reads every page of /v1/deployments (at most MAX_PAGES).
async function deployments(params) {
  const out = [];
  let token = "";
  for (let i = 0; i < MAX_PAGES; i++) {
    const r = await api.get("/v1/deployments", { ...params, page_size: 500, page_token: token });
    out.push(...r.deployments);
    token = r.next_page_token;
    if (!token) break;
  }
  return { deployments: out, truncated: Boolean(token) };
}

function versionCell(d) {
  return [d.previous_version ? d.previous_version + " → " : "", h("strong", {}, d.version),
    d.rollback ? [" ", h("span", { class: "badge b-warn" }, "rollback")] : null,
    d.failed ? [" ", h("span", { class: "badge b-neutral" }, "failed attempt")] : null];
}


function reasons(list) {
  return (list || []).map((r) => fmt.words(fmt.enumName(r, "FAILURE_REASON_"))).join(", ") || fmt.DASH;
}

function deploymentRows(deps, withUnit) {
  return deps.map((d) => h("tr", { "data-deployment": d.id },
    td(fmt.time(d.deploy_time)),
    withUnit ? td(unitLink(d.service, d.environment)) : null,
    td(versionCell(d)),
    td(badge(verdictOf(d))),
    td(d.change_failure ? reasons(d.failure_reasons) : fmt.DASH),
    td(d.explanation || fmt.DASH),
    td(causeCell(d.cause)),
    td(deploymentLink(d.id, "impact"))));
}

const depHead = (withUnit) => ["Deployed", withUnit ? "Service" : null, "Version", "Verdict", "Change failure", "Explanation", "Cause", ""].filter(Boolean);

export async function overview(params) {
  const [all, teams] = await Promise.all([api.get("/v1/services").then((r) => r.services), teamOptions()]);
  const envs = environments(all);
  const env = pickEnvironment(params, envs);
  const team = params.get("team") || "";
  const now = new Date();
  const doraFrom = daysAgo(30, now), depsFrom = daysAgo(7, now);
  const scope = { environment: env, team };
  const [deps, d] = await Promise.all([
    deployments({ ...scope, start_time: depsFrom, end_time: now }),
    api.get("/v1/dora", { ...scope, start_time: doraFrom, end_time: now }),
  ]);
  const teamServices = team ? new Set((teams.find((t) => t.name === team) || { services: [] }).services) : null;
  const units = all.filter((u) => u.environment === env && (!teamServices || teamServices.has(u.service)));
  const count = {};
  for (const x of deps.deployments) count[x.service] = (count[x.service] || 0) + 1;
  return [
    h("h1", {}, `Overview: ${env}` + (team ? ` · team ${team}` : "")),
    h("form", { class: "filters", "aria-label": "Scope" },
      select("environment", "Environment", envs, env),
      teams.length ? select("team", "Team", [["", "all teams"], ...teams.map((t) => t.name)], team) : null,
      h("button", { type: "submit" }, "Show")),
    h("h2", {}, "DORA, last 30 days"),
    doraTiles(d.summary, null, doraFrom, now),
    h("p", {}, h("a", { href: `/ui/dora?environment=${encodeURIComponent(env)}` + (team ? `&team=${encodeURIComponent(team)}` : "") }, "DORA over weeks and quarters")),
    h("h2", {}, `Deployments, last 7 days (${deps.deployments.length}${deps.truncated ? "+" : ""})`),
    deps.deployments.length
      ? table(depHead(true), deploymentRows(deps.deployments, true), { caption: "Deployments of the last 7 days" })
      : h("p", { class: "muted" }, "No deployments in the last 7 days."),
    h("h2", {}, `Services (${units.length})`),
    table(["Service", "Versions seen", "First seen", "Last seen", { text: "Deployments, 7 days", class: "num" }],
      units.map((u) => h("tr", {}, td(unitLink(u.service, u.environment)), td((u.versions || []).join(", ")),
        td(fmt.time(u.first_seen)), td(fmt.time(u.last_seen)), td(String(count[u.service] || 0), { class: "num" }))),
      { caption: "Services of the environment" }),
  ];
}

export async function unit(params, service) {
  const env = params.get("environment") || "production";
  const days = Math.min(Math.max(parseInt(params.get("days") || "30", 10) || 30, 1), 366);
  const now = new Date();
  const start = daysAgo(days, now);
  const [deps, inc] = await Promise.all([
    deployments({ service, environment: env, start_time: start, end_time: now }),
    api.get("/v1/incidents", { service, environment: env, start_time: start, end_time: now }),
  ]);
  const list = deps.deployments;
  const failures = list.filter((d) => d.change_failure).length;
  return [
    h("h1", {}, `${service} in ${env}`),
    h("form", { class: "filters", "aria-label": "Range" },
      h("input", { type: "hidden", name: "environment", value: env }),
      select("days", "Range", [["7", "7 days"], ["30", "30 days"], ["90", "90 days"], ["365", "a year"]], String(days)),
      h("button", { type: "submit" }, "Show")),
    h("p", {}, `${list.length} deployments, ${failures} change failures, ${inc.incidents.length} incidents over ${days} days. `,
      h("a", { href: `/ui/dora?environment=${encodeURIComponent(env)}&service=${encodeURIComponent(service)}` }, "DORA for this service")),
    charts.timeline(list, inc.incidents, start, now, (d) => tone(verdictOf(d))),
    h("h2", {}, "Deployments"),
    list.length ? table(depHead(false), deploymentRows(list, false), { caption: "Deployments of the unit" })
      : h("p", { class: "muted" }, "No deployments in this range."),
    inc.incidents.length ? [h("h2", {}, "Incidents"),
      table(["Opened", "Resolved", "Severity", "Title", "Source", "Deployment"], inc.incidents.map((i) => h("tr", {},
        td(fmt.time(i.opened_time)), td(fmt.time(i.resolved_time)), td(i.severity || fmt.DASH), td(i.title || i.id), td(i.source),
        td(i.linked_deployment_id ? deploymentLink(i.linked_deployment_id) : fmt.DASH))))] : null,
  ];
}

function metricName(m) {
  return ({ latency_p95_ms: "p95 latency", latency_p99_ms: "p99 latency", latency_p50_ms: "p50 latency", error_rate: "error rate" })[m] || fmt.words(m);
}

function metricValue(m, v) {
  return m === "error_rate" ? fmt.pct(v, 2) : fmt.ms(v);
}

function verdictTone(v) {
  return tone(fmt.enumName(v, "COMPARE_VERDICT_"));
}

function metricRows(metrics) {
  return metrics.map((m) => h("tr", { "data-metric": m.metric },
    td(metricName(m.metric)),
    td(figure(m.before, metricValue(m.metric, m.before)), { class: "num" }),
    td(figure(m.after, metricValue(m.metric, m.after)), { class: "num" }),
    td(figure(m.relative_change, fmt.signedPct(m.relative_change)), { class: "num" }),
    td(m.ci_low === null || m.ci_high === null ? fmt.DASH : `${fmt.signedPct(m.ci_low)} … ${fmt.signedPct(m.ci_high)}`, { class: "num" }),
    td(figure(m.min_detectable_change, fmt.signedPct(m.min_detectable_change)), { class: "num" }),
    td(fmt.num(m.adjusted_p_value, 4), { class: "num" }),
    td(badge(fmt.enumName(m.verdict, "COMPARE_VERDICT_")))));
}

const metricHead = ["Metric", { text: "Before", class: "num" }, { text: "After", class: "num" }, { text: "Change", class: "num" },
  { text: "95 % interval", class: "num" }, { text: "Smallest detectable", class: "num" }, { text: "Adjusted p", class: "num" }, "Verdict"];

function forestOf(metrics, label) {
  return charts.forest(metrics.map((m) => ({ label: metricName(m.metric), value: m.relative_change, low: m.ci_low, high: m.ci_high,
    tone: verdictTone(m.verdict) })), label);
}

export async function deployment(params, id) {
  const r = await api.get(`/v1/deployments/${encodeURIComponent(id)}/impact`);
  const d = r.deployment;
  const v = fmt.enumName(r.verdict, "VERDICT_");
  const ops = r.operations || [];
  const ek = r.error_kinds;
  const causes = (r.attribution && r.attribution.causes) || [];
  const control = r.control;
  return [
    h("h1", {}, `${d.service} ${d.version}`, " ", badge(v)),
    h("p", {}, unitLink(d.service, d.environment), ` in ${d.environment}: ${d.previous_version || "?"} → ${d.version}, deployed ${fmt.time(d.deploy_time)}`,
      d.lead_time_seconds ? `, lead time ${fmt.duration(d.lead_time_seconds)}` : "",
      d.commit_sha ? [", commit ", h("code", {}, d.commit_sha.slice(0, 12))] : ""),
    h("div", { class: "explain " + tone(v) }, r.explanation || d.explanation || "No explanation."),
    d.change_failure ? h("p", {}, "Change failure: ", reasons(d.failure_reasons),
      d.time_to_restore_seconds ? `; restored after ${fmt.duration(d.time_to_restore_seconds)}` : "") : null,
    h("h2", {}, "Before and after"),
    table(["Window", "From", "To", { text: "Requests", class: "num" }, { text: "Error rate", class: "num" },
      { text: "p50", class: "num" }, { text: "p95", class: "num" }, { text: "p99", class: "num" }],
      [["before", r.before], ["after", r.after]].filter(([, w]) => w).map(([n, w]) => h("tr", { "data-window": n },
        td(n), td(fmt.time(w.start)), td(fmt.time(w.end)), td(figure(w.requests, fmt.int(w.requests)), { class: "num" }),
        td(figure(w.error_rate, fmt.pct(w.error_rate, 2)), { class: "num" }), td(figure(w.p50_ms, fmt.ms(w.p50_ms)), { class: "num" }),
        td(figure(w.p95_ms, fmt.ms(w.p95_ms)), { class: "num" }), td(figure(w.p99_ms, fmt.ms(w.p99_ms)), { class: "num" }))),
      { caption: "Before and after windows" }),
    r.before && r.after ? charts.percentiles(r.before, r.after) : null,
    r.windows_complete ? null : h("p", { class: "muted" }, "The after window is not complete yet: the verdict may change."),
    (r.metrics || []).length ? [h("h2", {}, "The unit's metrics"), forestOf(r.metrics, "Relative change of the unit's metrics with 95 % intervals"),
      table(metricHead, metricRows(r.metrics), { caption: "The unit's metrics" })] : null,
    control && control.kind ? [h("h2", {}, "Control"),
      h("p", {}, `Compared against ${fmt.words(control.kind)}` + ((control.series || []).length ? `: ${control.series.join(", ")}` : "") + "."),
      (control.shifts || []).length ? table(["Metric", { text: "Control's change", class: "num" }, { text: "95 % interval", class: "num" }],
        control.shifts.map((s) => h("tr", {}, td(metricName(s.metric)), td(fmt.signedPct(s.change), { class: "num" }),
          td(`${fmt.signedPct(s.ci_low)} … ${fmt.signedPct(s.ci_high)}`, { class: "num" }))), { caption: "What the control did" }) : null] : null,
    ops.length ? [h("h2", {}, `Operations (${ops.length})`),
      table(["Operation", { text: "Requests before", class: "num" }, { text: "after", class: "num" }, "Verdict", "Evidence"],
        ops.map((o) => h("tr", { "data-operation": o.operation },
          td(o.other_operations ? `${o.operation_count} other operations` : o.operation),
          td(fmt.int(o.before_requests), { class: "num" }), td(fmt.int(o.after_requests), { class: "num" }),
          td(badge(fmt.enumName(o.verdict, "COMPARE_VERDICT_"))),
          td((o.metrics || []).filter((m) => m.relative_change !== null).map((m) => `${metricName(m.metric)} ${fmt.signedPct(m.relative_change)}`).join("; ") || fmt.DASH))),
        { caption: "Per operation" })] : null,
    (d.regressions || []).length ? [h("h2", {}, "Regressions"),
      table(["Operation", "Metric", { text: "Before", class: "num" }, { text: "After", class: "num" }, { text: "Change", class: "num" }, "Error kind", "First trace"],
        d.regressions.map((g) => h("tr", {}, td(g.operation || "the unit"), td(metricName(g.metric)),
          td(metricValue(g.metric, g.before), { class: "num" }), td(metricValue(g.metric, g.after), { class: "num" }),
          td(fmt.signedPct(g.relative_change), { class: "num" }), td(g.error_kind || fmt.DASH), td(traceLink(g.first_trace_id)))),
        { caption: "Regressions" })] : null,
    ek && ek.tested ? [h("h2", {}, "Error kinds"), h("p", {}, ek.explanation || ""),
      [...(ek.new || []), ...(ek.rose || [])].length ? table(["Kind", "New", { text: "Before", class: "num" }, { text: "After", class: "num" }, { text: "After rate", class: "num" }, "Verdict", "First trace"],
        [...(ek.new || []), ...(ek.rose || [])].map((k) => h("tr", {}, td(k.kind), td(k.new ? "new" : "rose"), td(fmt.int(k.before), { class: "num" }),
          td(fmt.int(k.after), { class: "num" }), td(fmt.pct(k.after_rate, 3), { class: "num" }), td(badge(fmt.enumName(k.verdict, "COMPARE_VERDICT_"))),
          td(traceLink(k.first_trace_id)))), { caption: "New and rising error kinds" }) : null] : null,
    causes.length ? [h("h2", {}, "Attribution"),
      table(["Rank", "Cause", "Metric", { text: "Share explained", class: "num" }, "Significant"], causes.map((c) => h("tr", {},
        td(String(c.rank)), td(causeCell(c)), td(metricName(c.metric)), td(fmt.pct(c.share), { class: "num" }), td(c.significant ? "yes" : "no"))),
        { caption: "Causes" })] : null,
    r.canary ? [h("h2", {}, "Canary: both versions in the same minutes"), compareBody(r.canary)] : null,
  ];
}

// compareBody shows a same-window comparison (canary, A/B).
export function compareBody(c) {
  const metrics = c.metrics || [];
  return [
    h("p", {}, "Verdict ", badge(fmt.enumName(c.verdict, "COMPARE_VERDICT_")), ` over ${c.overlap_minutes} minutes both served. `,
      `Control ${c.control.value}: `, figure(c.control.requests, fmt.int(c.control.requests), { "data-cohort": "control" }), " requests; ",
      `treatment ${c.treatment.value}: `, figure(c.treatment.requests, fmt.int(c.treatment.requests), { "data-cohort": "treatment" }), " requests.",
      c.srm && c.srm.mismatch ? [" ", h("span", { class: "badge b-bad" }, "sample ratio mismatch")] : null),
    h("p", {}, "Slowest treatment trace: ", traceLink(c.treatment.slowest_trace_id), "; a failed one: ", traceLink(c.treatment.failed_trace_id)),
    metrics.length ? charts.forest(metrics.filter((m) => m.metric !== "request_share").map((m) => ({ label: metricName(m.metric), value: m.relative_change,
      low: m.ci_low, high: m.ci_high, tone: verdictTone(m.verdict) })), "Treatment against control, relative change with 95 % intervals") : null,
    table(["Metric", { text: "Control", class: "num" }, { text: "Treatment", class: "num" }, { text: "Change", class: "num" }, { text: "95 % interval", class: "num" }, { text: "p", class: "num" }, "Verdict"],
      metrics.map((m) => h("tr", { "data-metric": m.metric }, td(metricName(m.metric)),
        td(figure(m.control, fmt.num(m.control, 3)), { class: "num" }), td(figure(m.treatment, fmt.num(m.treatment, 3)), { class: "num" }),
        td(figure(m.relative_change, fmt.signedPct(m.relative_change)), { class: "num" }),
        td(m.ci_low === null ? fmt.DASH : `${fmt.signedPct(m.ci_low)} … ${fmt.signedPct(m.ci_high)}`, { class: "num" }),
        td(fmt.num(m.p_value, 4), { class: "num" }), td(badge(fmt.enumName(m.verdict, "COMPARE_VERDICT_"))))),
      { caption: "Compared metrics" }),
    (c.operations || []).length ? [h("h3", {}, "Per operation"),
      table(["Operation", { text: "Control requests", class: "num" }, { text: "Treatment requests", class: "num" }, "Verdict"],
        c.operations.map((o) => h("tr", {}, td(o.operation), td(fmt.int(o.control.requests), { class: "num" }),
          td(fmt.int(o.treatment.requests), { class: "num" }), td(badge(fmt.enumName(o.verdict, "COMPARE_VERDICT_"))))),
        { caption: "Per operation" })] : null,
  ];
}

// gate shows what the rollout gate answers now for each unit's latest
// deployment of the last week: the gate keeps no state, so its recent
// decisions are its answers for the recent rollouts. A gate answer judges
// the rollout afresh (it is what a controller waits for), so the rows come
// first, with the stored verdict, and each answer fills its row when it
// arrives, two at a time.
export async function gate(params) {
  const [all, teams] = await Promise.all([api.get("/v1/services").then((r) => r.services), teamOptions()]);
  const envs = environments(all);
  const env = pickEnvironment(params, envs);
  const team = params.get("team") || "";
  const now = new Date();
  const deps = await deployments({ environment: env, team, start_time: daysAgo(7, now), end_time: now });
  const latest = new Map();
  for (const d of deps.deployments) if (!d.failed && !latest.has(d.service)) latest.set(d.service, d);
  const rows = [...latest.values()].slice(0, 12);
  const cells = rows.map(() => ({ answer: td(h("span", { class: "muted" }, "asking…")), mode: td(""), reasons: td(""), explanation: td("") }));
  const content = [
    h("h1", {}, `Gate: ${env}` + (team ? ` · team ${team}` : "")),
    h("form", { class: "filters", "aria-label": "Scope" }, select("environment", "Environment", envs, env),
      teams.length ? select("team", "Team", [["", "all teams"], ...teams.map((t) => t.name)], team) : null,
      h("button", { type: "submit" }, "Show")),
    h("p", {}, "What the rollout gate (GET /v1/gate, as Argo Rollouts and Flagger ask it) answers now for each service's latest deployment of the last 7 days."),
    rows.length ? table(["Service", "Version", "Deployed", "Verdict", "Gate answer", "Mode", "Reasons", "Explanation"], rows.map((d, i) =>
      h("tr", { "data-service": d.service }, td(unitLink(d.service, env)), td(deploymentLink(d.id, d.version)), td(fmt.time(d.deploy_time)),
        td(badge(verdictOf(d))), cells[i].answer, cells[i].mode, cells[i].reasons, cells[i].explanation)), { caption: "The gate's answers" })
      : h("p", { class: "muted" }, "No deployments in the last 7 days."),
  ];
  const ask = async (i) => {
    const d = rows[i];
    const a = await api.get("/v1/gate", { service: d.service, environment: env, version: d.version });
    const c = cells[i];
    c.answer.replaceChildren(h("span", { "data-gate": a.result }, badge(a.result === "GATE_RESULT_UNSPECIFIED" ? "INCONCLUSIVE" : a.result)));
    c.mode.replaceChildren(fmt.words(fmt.enumName(a.mode, "GATE_MODE_")) || fmt.DASH);
    c.reasons.replaceChildren((a.reasons || []).map(fmt.words).join(", ") || fmt.DASH);
    c.explanation.replaceChildren(a.explanation || fmt.DASH);
  };
  const pending = async () => {
    let next = 0;
    const worker = async () => {
      while (next < rows.length) await ask(next++);
    };
    await Promise.all([worker(), worker()]);
  };
  return { content, pending };
}
