// Elements are built from API strings as text nodes and attributes only,
// never as HTML: nothing the API returns can become markup.
const SVG = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

export function table(head, rows, opts = {}) {
  return h("table", { class: opts.class },
    opts.caption ? h("caption", { class: "sr-only" }, opts.caption) : null,
    h("thead", {}, h("tr", {}, head.map((c) => typeof c === "string"
      ? h("th", { scope: "col" }, c)
      : h("th", { scope: "col", class: c.class }, c.text)))),
    h("tbody", {}, rows));
}

export function td(content, attrs) {
  return h("td", attrs || {}, content);
}
