// Xueshi's charts: a few lines of SVG, served by the ledger itself (no CDN, no build step).
// <figure data-chart="bars|line" data-series='[{"label": "…", "value": 1}, …]'> becomes an inline SVG.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function bars(series, svg) {
    var max = Math.max.apply(null, series.map(function (d) { return d.value; }).concat([1]));
    var row = 34, width = 320, left = 110;
    svg.setAttribute("viewBox", "0 0 " + (left + width + 70) + " " + (series.length * row + 8));
    series.forEach(function (d, i) {
      var y = i * row + 6, w = Math.max(1, Math.round(width * d.value / max));
      svg.appendChild(el("text", {x: left - 8, y: y + 17, "text-anchor": "end", "class": "label"}, d.label));
      svg.appendChild(el("rect", {x: left, y: y, width: w, height: 24, rx: 3, "class": "bar bar" + (i % 4)}));
      svg.appendChild(el("text", {x: left + w + 6, y: y + 17, "class": "value"}, String(d.value)));
    });
  }
  function line(series, svg) {
    var w = 460, h = 180, pad = 34;
    svg.setAttribute("viewBox", "0 0 " + (w + pad * 2) + " " + (h + pad * 2));
    var max = Math.max.apply(null, series.map(function (d) { return d.value; }).concat([1]));
    var step = series.length > 1 ? w / (series.length - 1) : 0;
    var points = series.map(function (d, i) {
      return (pad + i * step).toFixed(1) + "," + (pad + h - h * d.value / max).toFixed(1);
    });
    svg.appendChild(el("line", {x1: pad, y1: pad + h, x2: pad + w, y2: pad + h, "class": "axis"}));
    svg.appendChild(el("polyline", {points: points.join(" "), "class": "trend"}));
    series.forEach(function (d, i) {
      var xy = points[i].split(",");
      svg.appendChild(el("circle", {cx: xy[0], cy: xy[1], r: 3, "class": "dot"}));
      if (i === 0 || i === series.length - 1 || i % Math.ceil(series.length / 6) === 0) {
        svg.appendChild(el("text", {x: xy[0], y: pad + h + 16, "text-anchor": "middle", "class": "label"}, d.label));
      }
    });
    svg.appendChild(el("text", {x: pad, y: pad - 10, "class": "value"}, String(max)));
  }
  document.querySelectorAll("[data-chart]").forEach(function (figure) {
    var series = JSON.parse(figure.getAttribute("data-series") || "[]");
    var svg = el("svg", {role: "img", "aria-label": figure.getAttribute("aria-label") || ""});
    (figure.getAttribute("data-chart") === "line" ? line : bars)(series, svg);
    figure.insertBefore(svg, figure.firstChild);
  });
})();
