// Parley dashboard charts: a small line chart on <canvas>, written for
// this console (no library, no build step). It fetches /admin/stats (the
// server's samples of its own metrics, the counters /metrics exposes) and
// redraws every chart each time a new sample may exist.
(function () {
  "use strict";
  var root = document.querySelector("[data-stats]");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-stats");
  var canvases = root.querySelectorAll("canvas[data-series]");

  function fmt(v) {
    if (v >= 100) { return v.toFixed(0); }
    if (v >= 10) { return v.toFixed(1); }
    return v.toFixed(2);
  }

  function draw(canvas, points, key) {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || 600, h = canvas.clientHeight || 160;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    var g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    var xs = [], ys = [];
    for (var i = 0; i < points.length; i++) {
      var v = points[i][key];
      if (typeof v === "number") { xs.push(points[i].t); ys.push(v); }
    }
    var padL = 44, padR = 8, padT = 8, padB = 20;
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#5b6475";
    g.strokeStyle = "#dde1e8";
    g.lineWidth = 1;
    if (ys.length === 0) {
      g.fillText("no data yet", padL, h / 2);
      return;
    }
    var max = Math.max.apply(null, ys), min = 0;
    if (max <= min) { max = min + 1; }
    max = max * 1.1;
    var t0 = xs[0], t1 = xs[xs.length - 1];
    if (t1 <= t0) { t1 = t0 + 1; }
    function X(t) { return padL + (t - t0) / (t1 - t0) * (w - padL - padR); }
    function Y(v) { return h - padB - (v - min) / (max - min) * (h - padT - padB); }
    for (var k = 0; k <= 2; k++) {
      var gv = min + (max - min) * k / 2, gy = Y(gv);
      g.beginPath(); g.moveTo(padL, gy); g.lineTo(w - padR, gy); g.stroke();
      g.fillText(fmt(gv), 2, gy + 4);
    }
    var mins = Math.round((t1 - t0) / 60000);
    g.fillText(mins > 0 ? "last " + mins + " min" : "now", padL, h - 4);
    g.strokeStyle = "#2457c5";
    g.lineWidth = 2;
    g.beginPath();
    for (var j = 0; j < ys.length; j++) {
      if (j === 0) { g.moveTo(X(xs[j]), Y(ys[j])); } else { g.lineTo(X(xs[j]), Y(ys[j])); }
    }
    if (ys.length === 1) { g.lineTo(w - padR, Y(ys[0])); }
    g.stroke();
    canvas.setAttribute("data-points", String(ys.length));
  }

  function update() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (points) {
        for (var i = 0; i < canvases.length; i++) {
          draw(canvases[i], points, canvases[i].getAttribute("data-series"));
        }
        var last = points[points.length - 1];
        if (!last) { return; }
        ["sessions", "logins", "stanzas", "s2s", "storage_ms"].forEach(function (k) {
          var el = document.getElementById("v-" + k);
          if (el && typeof last[k] === "number") { el.textContent = k === "sessions" || k === "s2s" ? last[k].toFixed(0) : fmt(last[k]); }
        });
      })
      .catch(function () { /* keep the last drawing; the next tick retries */ });
  }
  update();
  window.setInterval(update, 5000);
  window.addEventListener("resize", update);
})();
