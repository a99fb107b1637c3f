// Small SVG charts: each is an image with a text alternative (aria-label)
// that says what it shows; the pages print the same figures in tables.
import { s } from "./dom.js";
import * as fmt from "./fmt.js";

function svg(width, height, label, ...children) {
  return s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label },
    s("title", {}, label), ...children);
}

function finite(v) {
  return typeof v === "number" && Number.isFinite(v);
}

// forest draws relative changes with their intervals around zero, one row
// each: the reader sees at once which moved, which way, and how sure.
export function forest(rows, label) {
  const W = 560, rowH = 26, left = 190, right = 20, top = 18;
  const H = top + rows.length * rowH + 18;
  let m = 0.05;
  for (const r of rows) for (const v of [r.value, r.low, r.high]) if (finite(v)) m = Math.max(m, Math.abs(v));
  m = Math.min(m * 1.1, 10);
  const x = (v) => left + ((Math.max(-m, Math.min(m, v)) + m) / (2 * m)) * (W - left - right);
  const parts = [
    s("line", { class: "zero", x1: x(0), x2: x(0), y1: top - 6, y2: H - 14 }),
    s("text", { x: left, y: 11 }, fmt.signedPct(-m, 0)),
    s("text", { x: x(0) - 4, y: 11 }, "0"),
    s("text", { x: W - right - 34, y: 11 }, fmt.signedPct(m, 0)),
  ];
  const said = [];
  rows.forEach((r, i) => {
    const y = top + i * rowH + rowH / 2;
    parts.push(s("text", { x: 4, y: y + 4 }, r.label.length > 28 ? r.label.slice(0, 27) + "…" : r.label));
    if (!finite(r.value)) {
      parts.push(s("text", { x: x(0) + 6, y: y + 4 }, "no estimate"));
      said.push(`${r.label}: no estimate`);
      return;
    }
    const cls = r.tone === "bad" ? "ci bad" : r.tone === "good" ? "ci good" : "ci";
    if (finite(r.low) && finite(r.high) && (r.low !== 0 || r.high !== 0)) {
      parts.push(s("line", { class: cls, x1: x(r.low), x2: x(r.high), y1: y, y2: y }));
    }
    parts.push(s("circle", { class: r.tone === "bad" ? "m-bad" : r.tone === "good" ? "m-good" : "dot", cx: x(r.value), cy: y, r: 5 }));
    said.push(`${r.label} ${fmt.signedPct(r.value)}` + (finite(r.low) && finite(r.high) ? ` (${fmt.signedPct(r.low)} to ${fmt.signedPct(r.high)})` : ""));
  });
  return svg(W, H, `${label}: ${said.join("; ")}`, ...parts);
}

// line draws a trend over time, with the team's target as a dashed line.
export function line(points, { label, format, target }) {
  const W = 520, H = 170, L = 62, R = 12, T = 12, B = 28;
  const ys = points.map((p) => p.y).filter(finite);
  let hi = Math.max(...ys, finite(target) ? target : 0, 0);
  if (hi <= 0) hi = 1;
  hi *= 1.1;
  const n = points.length;
  const x = (i) => L + (n <= 1 ? (W - L - R) / 2 : (i / (n - 1)) * (W - L - R));
  const y = (v) => T + (1 - v / hi) * (H - T - B);
  const parts = [
    s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }),
    s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
    s("line", { class: "grid", x1: L, x2: W - R, y1: y(hi / 2), y2: y(hi / 2) }),
    s("text", { x: 2, y: T + 8 }, format(hi)),
    s("text", { x: 2, y: y(hi / 2) + 4 }, format(hi / 2)),
    s("text", { x: 2, y: H - B }, format(0)),
  ];
  if (n > 0) {
    parts.push(s("text", { x: L, y: H - 8 }, points[0].x));
    parts.push(s("text", { x: W - R - 70, y: H - 8 }, points[n - 1].x));
  }
  if (finite(target)) parts.push(s("line", { class: "target", x1: L, x2: W - R, y1: y(target), y2: y(target) }));
  let d = "";
  points.forEach((p, i) => {
    if (!finite(p.y)) return;
    d += (d === "" ? "M" : "L") + x(i).toFixed(1) + " " + y(p.y).toFixed(1) + " ";
  });
  if (d) parts.push(s("path", { class: "line", d }));
  points.forEach((p, i) => {
    if (finite(p.y)) parts.push(s("circle", { class: "dot", cx: x(i), cy: y(p.y), r: 3 }, s("title", {}, `${p.x}: ${format(p.y)}`)));
  });
  const known = points.filter((p) => finite(p.y));
  const summary = known.length
    ? `from ${format(known[0].y)} (${known[0].x}) to ${format(known[known.length - 1].y)} (${known[known.length - 1].x})`
    : "no data";
  return svg(W, H, `${label}: ${summary}` + (finite(target) ? `; target ${format(target)}` : ""), ...parts);
}

// bars draws one bar per period (quarters), value written on each.
export function bars(points, { label, format, target }) {
  const W = 320, H = 170, L = 8, T = 18, B = 28;
  const ys = points.map((p) => p.y).filter(finite);
  let hi = Math.max(...ys, finite(target) ? target : 0, 0);
  if (hi <= 0) hi = 1;
  hi *= 1.15;
  const bw = (W - L * 2) / Math.max(points.length, 1);
  const y = (v) => T + (1 - v / hi) * (H - T - B);
  const parts = [s("line", { class: "axis", x1: L, x2: W - L, y1: H - B, y2: H - B })];
  points.forEach((p, i) => {
    const x0 = L + i * bw + bw * 0.15;
    if (finite(p.y)) {
      parts.push(s("rect", { class: "bar", x: x0, y: y(p.y), width: bw * 0.7, height: H - B - y(p.y) }));
      parts.push(s("text", { x: x0, y: y(p.y) - 4 }, format(p.y)));
    } else {
      parts.push(s("text", { x: x0, y: H - B - 4 }, "no data"));
    }
    parts.push(s("text", { x: x0, y: H - 10 }, p.x));
  });
  if (finite(target)) parts.push(s("line", { class: "target", x1: L, x2: W - L, y1: y(target), y2: y(target) }));
  return svg(W, H, `${label}: ` + points.map((p) => `${p.x} ${format(p.y)}`).join(", ") + (finite(target) ? `; target ${format(target)}` : ""), ...parts);
}

// timeline places a unit's deployments (marked by verdict) and incidents
// on one time axis.
export function timeline(deps, incidents, start, end, toneOf) {
  const W = 1000, H = 96, L = 10, R = 10, Y = 44;
  const t0 = start.getTime(), t1 = end.getTime();
  const x = (t) => L + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * (W - L - R);
  const parts = [s("line", { class: "axis", x1: L, x2: W - R, y1: Y, y2: Y })];
  const days = (t1 - t0) / 86400000;
  const step = days > 45 ? 7 : days > 10 ? 2 : 1;
  for (let t = Math.ceil(t0 / 86400000) * 86400000; t < t1; t += step * 86400000) {
    parts.push(s("line", { class: "grid", x1: x(t), x2: x(t), y1: 18, y2: H - 24 }));
    parts.push(s("text", { x: x(t) + 2, y: H - 8 }, new Date(t).toISOString().slice(5, 10)));
  }
  for (const inc of incidents) {
    const a = Date.parse(inc.opened_time);
    const b = inc.resolved_time && Date.parse(inc.resolved_time) > 0 ? Date.parse(inc.resolved_time) : t1;
    parts.push(s("rect", { class: "incident", x: x(a), y: 16, width: Math.max(x(b) - x(a), 3), height: 10 },
      s("title", {}, `incident ${inc.title || inc.id}: ${fmt.time(inc.opened_time)}`)));
  }
  let bad = 0;
  for (const d of deps) {
    const tone = toneOf(d);
    if (tone === "bad") bad++;
    parts.push(s("circle", { class: "m-" + tone, cx: x(Date.parse(d.deploy_time)), cy: Y, r: d.change_failure ? 7 : 5 },
      s("title", {}, `${d.version} at ${fmt.time(d.deploy_time)}: ${fmt.enumName(d.verdict, "VERDICT_")}`)));
  }
  return svg(W, H, `${deps.length} deployments between ${fmt.day(start)} and ${fmt.day(end)}, ${bad} judged degraded; ${incidents.length} incidents`, ...parts);
}

// percentiles draws p50, p95 and p99 before (open) and after (filled).
export function percentiles(before, after) {
  const W = 520, H = 110, L = 44, R = 16;
  const rows = [["p50", "p50_ms"], ["p95", "p95_ms"], ["p99", "p99_ms"]];
  let hi = 1;
  for (const [, k] of rows) for (const w of [before, after]) if (w && finite(w[k])) hi = Math.max(hi, w[k]);
  hi *= 1.1;
  const x = (v) => L + (v / hi) * (W - L - R);
  const parts = [s("line", { class: "axis", x1: L, x2: W - R, y1: H - 22, y2: H - 22 }),
    s("text", { x: L, y: H - 6 }, "0 ms"), s("text", { x: W - R - 60, y: H - 6 }, fmt.ms(hi))];
  const said = [];
  rows.forEach(([name, k], i) => {
    const y = 16 + i * 26;
    parts.push(s("text", { x: 4, y: y + 4 }, name));
    const b = before && before[k], a = after && after[k];
    if (finite(b) && finite(a)) parts.push(s("line", { class: "grid", x1: x(b), x2: x(a), y1: y, y2: y }));
    if (finite(b)) parts.push(s("circle", { cx: x(b), cy: y, r: 5, fill: "#fff", stroke: "#0b57d0", "stroke-width": 2 }));
    if (finite(a)) parts.push(s("circle", { class: "dot2", cx: x(a), cy: y, r: 5 }));
    said.push(`${name} ${fmt.ms(b)} before, ${fmt.ms(a)} after`);
  });
  return svg(W, H, `Latency percentiles, before (open circle) and after (filled): ${said.join("; ")}`, ...parts);
}
