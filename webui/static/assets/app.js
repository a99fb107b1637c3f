// The UI's shell: settings, the token form when auth is on, and routing of
// /ui/... addresses to pages without reloading.
import * as api from "./api.js";
import { h } from "./dom.js";
import { setSettings } from "./common.js";
import * as units from "./units.js";
import * as dora from "./dora.js";
import * as compare from "./compare.js";

const routes = [
  [/^\/ui\/?$/, units.overview],
  [/^\/ui\/units\/([^/]+)$/, units.unit],
  [/^\/ui\/deployments\/([^/]+)$/, units.deployment],
  [/^\/ui\/gate$/, units.gate],
  [/^\/ui\/dora$/, dora.dora],
  [/^\/ui\/teams$/, dora.teams],
  [/^\/ui\/retro\/([^/]+)\/([^/]+)$/, dora.retro],
  [/^\/ui\/compare$/, compare.compare],
  [/^\/ui\/experiments$/, compare.experiments],
  [/^\/ui\/experiments\/([^/]+)$/, compare.experiment],
];

const main = document.getElementById("main");
let rendering = 0;

async function render() {
  const my = ++rendering;
  document.body.dataset.ready = "false";
  delete document.body.dataset.error;
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  for (const a of document.querySelectorAll(".top nav a")) {
    const here = a.getAttribute("href") === path || (a.getAttribute("href") !== "/ui/" && path.startsWith(a.getAttribute("href")));
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const route = routes.find(([re]) => re.test(path));
  let content;
  try {
    if (!route) {
      content = [h("h1", {}, "Not found"), h("p", {}, "No page at this address. "), h("a", { href: "/ui/" }, "Overview")];
    } else {
      const args = path.match(route[0]).slice(1).map(decodeURIComponent);
      content = await route[1](params, ...args);
    }
  } catch (e) {
    if (my !== rendering) return;
    if (e instanceof api.AuthRequired) {
      content = tokenForm(e.message);
    } else {
      content = [h("h1", {}, "Could not load this page"), h("p", { class: "error", role: "alert" }, e.message)];
      document.body.dataset.error = e.message;
    }
  }
  if (my !== rendering) return;
  // A page may show its rows first and fill in slower figures after
  // (pending): it is ready when those are in too.
  let pending = null;
  if (content && content.pending) {
    pending = content.pending;
    content = content.content;
  }
  main.replaceChildren(...[content].flat(Infinity).filter(Boolean));
  const h1 = main.querySelector("h1");
  document.title = (h1 ? h1.textContent + " · " : "") + "changelens";
  if (pending) {
    try {
      await pending();
    } catch (e) {
      if (my !== rendering) return;
      main.append(h("p", { class: "error", role: "alert" }, e.message));
      document.body.dataset.error = e.message;
    }
    if (my !== rendering) return;
  }
  document.body.dataset.ready = "true";
}

function tokenForm(why) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true });
  return [
    h("h1", {}, "Sign in"),
    h("p", {}, `This changelens API asks for a bearer token (${why}). It is kept in this tab only.`),
    h("form", { class: "filters", onSubmit: (ev) => {
      // The token lives in this tab's sessionStorage, which a reload keeps:
      // the page starts again as it would with the token from the start.
      ev.preventDefault();
      api.setToken(input.value.trim());
      location.reload();
    } },
      h("label", { for: "token" }, "API token", input), h("button", { type: "submit" }, "Continue")),
  ];
}

// go moves to an in-app address.
function go(url) {
  history.pushState(null, "", url);
  render().then(() => main.focus());
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui/") && url.pathname !== "/ui") return;
  ev.preventDefault();
  go(url.pathname + url.search);
});

// Filter forms submit to their own page as GET parameters.
document.addEventListener("submit", (ev) => {
  const f = ev.target;
  if (!(f instanceof HTMLFormElement) || !f.classList.contains("filters") || ev.defaultPrevented) return;
  ev.preventDefault();
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(f)) if (v !== "") q.set(k, v);
  go(location.pathname + (q.toString() ? "?" + q : ""));
});

window.addEventListener("popstate", render);

(async () => {
  const cfg = await api.config();
  api.setAuth(cfg.auth);
  setSettings(cfg);
  document.getElementById("version").textContent = "changelens " + (cfg.version || "");
  await render();
})();
