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
