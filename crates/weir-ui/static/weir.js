// weir's UI script: the theme switch and the time-zone switch, both remembered in
// localStorage, and the folding of task groups in the grid. Loaded in <head> so the theme applies before the first paint.
(function () {
  "use strict";
  var root = document.documentElement;
  var THEME = "weir-theme", TZ = "weir-tz", GROUPS = "weir-open-groups:";

  function opened() {
    try { return JSON.parse(sessionStorage.getItem(GROUPS + location.pathname) || "[]"); } catch (e) { return []; }
  }
  function openGroups(scope) {
    var open = opened();
    (scope || document).querySelectorAll(".group-toggle").forEach(function (button) {
      var on = open.indexOf(button.dataset.group) >= 0;
      button.setAttribute("aria-expanded", on ? "true" : "false");
      button.innerHTML = (on ? "&#9662; " : "&#9656; ") + "";
      button.appendChild(document.createTextNode(button.dataset.group));
    });
    (scope || document).querySelectorAll("tr[data-in-group]").forEach(function (row) {
      row.hidden = open.indexOf(row.dataset.inGroup) < 0;
    });
  }

  function store(key, value) {
    try { if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value); } catch (e) {}
  }
  function stored(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  var theme = stored(THEME);
  if (theme) root.dataset.theme = theme;

  // Times are rendered in UTC (<time datetime=ISO>); the switch cycles UTC → the DAG's zone
  // (on DAG pages, when it is not UTC) → the browser's zone.
  function modes() {
    var dag = document.body.dataset.dagTz;
    var out = ["utc"];
    if (dag && dag !== "UTC") out.push("dag");
    out.push("local");
    return out;
  }
  function zoneOf(mode) {
    if (mode === "dag") return document.body.dataset.dagTz;
    if (mode === "local") return Intl.DateTimeFormat().resolvedOptions().timeZone;
    return "UTC";
  }
  function currentMode() {
    var mode = stored(TZ) || "utc";
    return modes().indexOf(mode) >= 0 ? mode : "utc";
  }
  function renderTimes(scope) {
    var mode = currentMode();
    var zone = zoneOf(mode);
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat("sv-SE", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit"
      });
    } catch (e) { return; }
    (scope || document).querySelectorAll("time[datetime]").forEach(function (el) {
      if (!el.dataset.utc) el.dataset.utc = el.textContent;
      if (mode === "utc") { el.textContent = el.dataset.utc; return; }
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = fmt.format(d) + " " + zone;
    });
    var button = document.getElementById("tz-toggle");
    if (button) button.textContent = mode === "utc" ? "UTC" : (mode === "dag" ? "DAG: " + zone : "Local: " + zone);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var themeButton = document.getElementById("theme-toggle");
    if (themeButton) themeButton.addEventListener("click", function () {
      var dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      store(THEME, root.dataset.theme);
    });
    var tzButton = document.getElementById("tz-toggle");
    if (tzButton) tzButton.addEventListener("click", function () {
      var all = modes();
      store(TZ, all[(all.indexOf(currentMode()) + 1) % all.length]);
      renderTimes(document);
    });
    renderTimes(document);
    openGroups(document);
    document.body.addEventListener("htmx:load", function (e) { renderTimes(e.target); openGroups(e.target); });
    // Task groups fold in the grid; which are open is remembered for the page, so the grid's
    // live updates (which replace it) keep them open.
    document.body.addEventListener("click", function (e) {
      var button = e.target.closest(".group-toggle");
      if (!button) return;
      var open = opened();
      var name = button.dataset.group;
      var at = open.indexOf(name);
      if (at >= 0) open.splice(at, 1); else open.push(name);
      try { sessionStorage.setItem(GROUPS + location.pathname, JSON.stringify(open)); } catch (err) {}
      openGroups(document);
    });
    // htmx leaves the page as it was when a request fails: say so, once, above the page.
    function problem(text) {
      var box = document.getElementById("htmx-problem");
      if (!box) {
        box = document.createElement("p");
        box.id = "htmx-problem";
        box.className = "flash error";
        var main = document.querySelector("main");
        main.insertBefore(box, main.firstChild);
      }
      box.textContent = text;
    }
    document.body.addEventListener("htmx:responseError", function (e) {
      problem("The server answered " + e.detail.xhr.status + " " + e.detail.xhr.statusText +
        ": reload the page to see its current state.");
    });
    document.body.addEventListener("htmx:sendError", function () {
      problem("The server cannot be reached; this page is no longer live. Reload it when weir is back.");
    });
    document.body.addEventListener("htmx:afterRequest", function (e) {
      var box = document.getElementById("htmx-problem");
      if (box && e.detail.successful) box.remove();
    });
  });
})();
