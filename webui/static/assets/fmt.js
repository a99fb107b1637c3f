// How figures are written on the pages. The browser tests read the raw
// value from data-value and check the text is written by these rules.

export const DASH = "—";

function finite(v) {
  return typeof v === "number" && Number.isFinite(v);
}

export function num(v, digits = 2) {
  return finite(v) ? v.toFixed(digits) : DASH;
}

export function int(v) {
  return finite(v) ? Math.round(v).toLocaleString("en-US") : DASH;
}

export function pct(v, digits = 1) {
  return finite(v) ? (v * 100).toFixed(digits) + " %" : DASH;
}

export function signedPct(v, digits = 1) {
  if (!finite(v)) return DASH;
  const p = (v * 100).toFixed(digits);
  return (v > 0 ? "+" : "") + p + " %";
}

export function ms(v) {
  return finite(v) ? v.toFixed(1) + " ms" : DASH;
}

// duration writes seconds in the unit a person reads them in.
export function duration(sec) {
  if (!finite(sec)) return DASH;
  if (sec < 120) return sec.toFixed(0) + " s";
  if (sec < 7200) return (sec / 60).toFixed(1) + " min";
  if (sec < 172800) return (sec / 3600).toFixed(1) + " h";
  return (sec / 86400).toFixed(1) + " d";
}

export function perDay(v) {
  return finite(v) ? v.toFixed(2) + " /day" : DASH;
}

export function time(iso) {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getTime() <= 0) return DASH;
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

export function day(iso) {
  if (!iso) return DASH;
  return new Date(iso).toISOString().slice(0, 10);
}

// enumName strips a proto enum's prefix: VERDICT_DEGRADED → DEGRADED.
export function enumName(v, prefix) {
  if (!v) return "";
  return v.startsWith(prefix) ? v.slice(prefix.length) : v;
}

export function words(v) {
  return String(v || "").replaceAll("_", " ").toLowerCase();
}
