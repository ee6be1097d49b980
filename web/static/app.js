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
// Jobs (mirror page): each running job's progress is polled from
// /api/v1/jobs/ID and shown in place; when one ends the page reloads to
// show its result. Without script the page shows the state it was loaded
// with.
(function () {
  var jobs = document.querySelectorAll(".job[data-state=running]");
  if (!jobs.length) { return; }
  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
  }
  function pct(done, total) { return Math.max(0, Math.min(100, Math.floor(100 * done / total))) + "%"; }
  function line(p) {
    var parts = [p.phase];
    if (p.to_fetch > 0) { parts.push(p.fetched + "/" + p.to_fetch + " packages"); }
    if (p.blobs > 0) { parts.push(p.blobs_done + "/" + p.blobs + " blobs"); }
    if (p.bytes > 0) { parts.push(fmtBytes(p.bytes_done) + " of " + fmtBytes(p.bytes) + " (" + pct(p.bytes_done, p.bytes) + ")"); }
    return (p.repo ? p.repo + ": " : "") + parts.join(" · ");
  }
  function show(el, j) {
    var lines = el.querySelector(".job-lines"), bar = el.querySelector(".job-bar");
    var ps = [];
    if (j.progress && j.progress.phase !== undefined) { ps = [j.progress]; }
    else if (j.progress) { Object.keys(j.progress).sort().forEach(function (k) { ps.push(j.progress[k]); }); }
    lines.textContent = "";
    var done = 0, total = 0;
    ps.forEach(function (p) {
      var d = document.createElement("div");
      d.className = "mono";
      d.textContent = line(p);
      lines.appendChild(d);
      done += Math.min(p.bytes_done || 0, p.bytes || 0); total += p.bytes || 0;
    });
    if (bar && total > 0) { bar.max = total; bar.value = done; }
  }
  jobs.forEach(function (el) {
    var id = el.getAttribute("data-job");
    var timer = setInterval(function () {
      fetch("/api/v1/jobs/" + encodeURIComponent(id), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) { return; }
          show(el, j);
          if (j.state !== "running") {
            clearInterval(timer);
            el.setAttribute("data-state", j.state);
            var b = el.querySelector(".job-state");
            if (b) { b.textContent = j.state; b.className = "badge job-state " + (j.state === "ok" ? "ok" : "bad"); }
            var a = document.activeElement;
            if (!a || (a.tagName !== "INPUT" && a.tagName !== "TEXTAREA")) { window.location.reload(); }
          }
        })
        .catch(function () {});
    }, 1000);
  });
})();
