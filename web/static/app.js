// airgapd admin UI: small progressive enhancements; every page works
// without script. Loaded as a file (the CSP allows no inline script).
"use strict";
document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { ev.preventDefault(); }
});
// Settings: a click on a problem's line number selects that line.
document.addEventListener("click", function (ev) {
  var a = ev.target.closest("a[data-line]");
  var ta = document.getElementById("config");
  if (!a || !ta) { return; }
  ev.preventDefault();
  var line = parseInt(a.getAttribute("data-line"), 10);
  var lines = ta.value.split("\n");
  var start = 0;
  for (var i = 0; i < line - 1 && i < lines.length; i++) { start += lines[i].length + 1; }
  ta.focus();
  ta.setSelectionRange(start, start + (lines[line - 1] || "").length);
  ta.scrollTop = Math.max(0, (line - 5) * 19);
});
// Overview and service pages refresh themselves every 15 s unless the
// user is typing in a form.
(function () {
  var every = document.body.getAttribute("data-refresh");
  if (!every) { return; }
  setInterval(function () {
    var a = document.activeElement;
    if (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA")) { return; }
    window.location.reload();
  }, parseInt(every, 10) * 1000);
})();
// Mirror: while a "Sync now" / "Index now" form's request runs (the page
// answers when the run ends), poll /api/v1/status and show each repo's
// progress. The form still works without script.
(function () {
  var panel = document.getElementById("sync-progress");
  if (!panel) { return; }
  var rows = document.getElementById("sync-progress-rows");
  var note = document.getElementById("sync-progress-note");
  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
  }
  function row(name, p) {
    var div = document.createElement("div");
    div.className = "sync-row";
    div.setAttribute("data-repo", name);
    var label = document.createElement("span");
    label.className = "mono";
    var bar = document.createElement("progress");
    if (p && p.bytes > 0) {
      bar.max = p.bytes; bar.value = Math.min(p.bytes_done, p.bytes);
    } else if (p && p.to_fetch > 0) {
      bar.max = p.to_fetch; bar.value = Math.min(p.fetched, p.to_fetch);
    }
    var text = name + ": ";
    if (!p) {
      text += "waiting";
    } else {
      var parts = [];
      if (p.phase && p.phase !== "packages") { parts.push(p.phase); }
      if (p.to_fetch > 0) { parts.push(p.fetched + "/" + p.to_fetch + " packages"); }
      text += parts.join(" · ");
      if (p.bytes > 0) { text += (parts.length ? " · " : "") + fmtBytes(p.bytes_done) + " of " + fmtBytes(p.bytes) + " (" + Math.floor(100 * p.bytes_done / p.bytes) + "%)"; }
    }
    label.textContent = text;
    div.appendChild(label);
    div.appendChild(bar);
    return div;
  }
  function poll(names, started) {
    fetch("/api/v1/status", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (st) {
        if (!st || !st.services) { return; }
        var mirror = null;
        st.services.forEach(function (s) { if (s.name === "mirror") { mirror = s.detail; } });
        if (!mirror || !mirror.repos) { return; }
        rows.textContent = "";
        var running = 0;
        mirror.repos.forEach(function (r) {
          if (names.length && names.indexOf(r.name) < 0) { return; }
          if (!names.length && r.kind !== "mirror" && !r.progress) { return; }
          if (r.progress) { running++; }
          rows.appendChild(row(r.name, r.progress));
        });
        var secs = Math.round((Date.now() - started) / 1000);
        note.textContent = (running ? "Running" : "Finishing") + " for " + secs + " s; the page shows the result when the run ends.";
      })
      .catch(function () {});
  }
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (ev.defaultPrevented || !f.action || !/\/mirror\/sync$/.test(new URL(f.action, location.href).pathname)) { return; }
    var names = [];
    f.querySelectorAll("input[name=repo]").forEach(function (i) { if (i.value) { names.push(i.value); } });
    setTimeout(function () { document.querySelectorAll("form[action='/mirror/sync'] button").forEach(function (b) { b.disabled = true; }); }, 0);
    panel.hidden = false;
    var started = Date.now();
    poll(names, started);
    setInterval(function () { poll(names, started); }, 1000);
  });
})();
