/* prism-eval report: shared helpers. The page's scripts are concatenated into one function body
   (render.py), so these names are visible to board.js and samples.js and to nothing else.
   Model text only ever reaches the page through textContent or properties; nothing here parses HTML. */
"use strict";

var SVGNS = "http://www.w3.org/2000/svg";
var DATA = (function () {
  var node = document.getElementById("prism-data");
  return node ? JSON.parse(node.textContent) : null;
}());

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) { e.className = cls; }
  if (text !== undefined && text !== null) { e.textContent = String(text); }
  return e;
}

function dot(color) {
  var s = document.createElementNS(SVGNS, "svg");
  s.setAttribute("width", "10"); s.setAttribute("height", "10"); s.setAttribute("class", "dot");
  s.setAttribute("aria-hidden", "true");
  var c = document.createElementNS(SVGNS, "circle");
  c.setAttribute("cx", "5"); c.setAttribute("cy", "5"); c.setAttribute("r", "5");
  c.setAttribute("fill", color);
  s.appendChild(c);
  return s;
}

/* One CSV field: quoted when needed; a leading = + - @ (a spreadsheet formula) is defused with a quote mark. */
function csvField(v) {
  if (v === null || v === undefined) { return ""; }
  var s = String(v);
  if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) { s = "'" + s; }
  return /[",\r\n]/.test(s) ? "\"" + s.replace(/"/g, "\"\"") + "\"" : s;
}

function csvText(header, rows) {
  return [header].concat(rows).map(function (r) { return r.map(csvField).join(","); }).join("\r\n") + "\r\n";
}

/* Save text as a file: a Blob URL on a detached link (nothing is added to the page). */
function download(name, text) {
  var blob = new Blob(["\ufeff" + text], { type: "text/csv;charset=utf-8" });
  var url = URL.createObjectURL(blob);
  var a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(function () { URL.revokeObjectURL(url); }, 0);
}
