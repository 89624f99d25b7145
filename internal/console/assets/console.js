// Parley console: progressive enhancement only. Every page works without
// this file; it adds confirmation before destructive forms, submits the
// host picker on change, and keeps the log view scrolled to its end.
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) {
      el.form.submit();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var log = document.querySelector("pre[data-follow]");
    if (log) {
      log.scrollTop = log.scrollHeight;
    }
  });
})();
