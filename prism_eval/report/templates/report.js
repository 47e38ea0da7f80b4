/* prism-eval report: table sorting, significance picker, sample browser.
   Model text only ever reaches the page through textContent or attributes set as
   properties; this file never parses HTML. */
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";

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

  /* ---- 1. sortable leaderboards ---- */
  function sortTable(table, btn) {
    var th = btn.closest("th");
    var col = Number(btn.dataset.col);
    var first = btn.dataset.first || "descending";
    var cur = th.getAttribute("aria-sort");
    var dir = cur === first ? (first === "ascending" ? "descending" : "ascending") : first;
    table.querySelectorAll("thead th").forEach(function (t) { t.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.querySelector("tbody.runs");
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === "ascending" ? 1 : -1;
    var text = btn.dataset.type === "text";
    rows.sort(function (a, b) {
      var va = a.cells[col].dataset.v, vb = b.cells[col].dataset.v;
      if (va === "" && vb === "") { return 0; }
      if (va === "") { return 1; }
      if (vb === "") { return -1; }
      return text ? sign * va.localeCompare(vb) : sign * (Number(va) - Number(vb));
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead button.sort").forEach(function (btn) {
      btn.addEventListener("click", function () { sortTable(table, btn); });
    });
  });

  /* ---- 2. significance matrix picker ---- */
  document.querySelectorAll("select.matrix-pick").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var box = document.getElementById(sel.dataset.target);
      box.querySelectorAll(".matrix").forEach(function (m) { m.hidden = m.dataset.index !== sel.value; });
    });
  });

  /* ---- 3. sample browser ---- */
  var dataEl = document.getElementById("prism-data");
  var list = document.getElementById("sb-list");
  if (!dataEl || !list) { return; }
  var D = JSON.parse(dataEl.textContent);
  var T = D.text;
  var PAGE = 20;
  var page = 0;

  var questions = [];
  var byKey = new Map();
  D.samples.forEach(function (s) {
    var key = s.b + "\u0000" + s.q;
    var Q = byKey.get(key);
    if (!Q) {
      Q = { b: s.b, q: s.q, cat: s.cat, im: s.im, ik: s.ik, qs: s.qs, runs: new Map() };
      byKey.set(key, Q);
      questions.push(Q);
    }
    if (!Q.runs.has(s.r)) { Q.runs.set(s.r, []); }
    Q.runs.get(s.r).push(s);
  });

  var $ = function (id) { return document.getElementById(id); };
  var selBench = $("sb-bench"), selRun = $("sb-run"), selCmp = $("sb-compare");
  var chkWrong = $("sb-wrong"), chkDis = $("sb-disagree"), search = $("sb-search");

  D.benchmarks.forEach(function (b, i) {
    var o = el("option", null, b); o.value = String(i); selBench.appendChild(o);
  });
  D.runs.forEach(function (r, i) {
    var label = r.label + (r.blind ? " (blind baseline)" : "");
    var o = el("option", null, label); o.value = String(i); selRun.appendChild(o);
    var o2 = el("option", null, label); o2.value = String(i); selCmp.appendChild(o2);
  });

  function isWrong(s) { return !s.ok; }
  function meanScore(arr) {
    var t = 0;
    arr.forEach(function (s) { t += s.s; });
    return arr.length ? t / arr.length : 0;
  }
  function textHas(s, q) {
    return T[s.cap].toLowerCase().indexOf(q) >= 0 || T[s.raw].toLowerCase().indexOf(q) >= 0;
  }
  function questionHas(Q, q) {
    if (T[Q.qs].toLowerCase().indexOf(q) >= 0 || String(Q.q).toLowerCase().indexOf(q) >= 0 ||
        String(Q.ik).toLowerCase().indexOf(q) >= 0) { return true; }
    var hit = false;
    Q.runs.forEach(function (arr) { if (!hit) { hit = arr.some(function (s) { return textHas(s, q); }); } });
    return hit;
  }

  function selected() {
    var run = selRun.value === "" ? -1 : Number(selRun.value);
    var cmp = selCmp.value === "" ? -1 : Number(selCmp.value);
    return {
      bench: selBench.value === "" ? -1 : Number(selBench.value),
      run: run, cmp: cmp, compare: run >= 0 && cmp >= 0 && run !== cmp,
      wrong: chkWrong.checked, disagree: chkDis.checked,
      q: search.value.trim().toLowerCase()
    };
  }

  function cards(f) {
    var out = [];
    questions.forEach(function (Q) {
      if (f.bench >= 0 && Q.b !== f.bench) { return; }
      if (f.q && !questionHas(Q, f.q)) { return; }
      if (f.compare) {
        var A = Q.runs.get(f.run), B = Q.runs.get(f.cmp);
        if (!A || !B) { return; }
        if (f.wrong && !A.some(isWrong) && !B.some(isWrong)) { return; }
        if (f.disagree && Math.abs(meanScore(A) - meanScore(B)) < 1e-9) { return; }
        out.push({ Q: Q, sides: [[f.run, A], [f.cmp, B]] });
      } else {
        var sides = [];
        Q.runs.forEach(function (arr, r) {
          if (f.run >= 0 && r !== f.run) { return; }
          var shown = f.wrong ? arr.filter(isWrong) : arr;
          if (shown.length) { sides.push([r, shown]); }
        });
        if (sides.length) { out.push({ Q: Q, sides: sides }); }
      }
    });
    return out;
  }

  var LETTERED = /^\s*\(?[A-Z][.):]\s/;
  function optionList(opts, gold) {
    var ol = el("ol", "opts");
    opts.forEach(function (oi, i) {
      var text = T[oi];
      var letter = String.fromCharCode(65 + i);
      var li = el("li");
      if (!LETTERED.test(text)) { li.appendChild(el("span", "letter", letter + ".")); }
      li.appendChild(document.createTextNode(text));
      if (gold === letter) { li.className = "gold"; li.title = "correct option"; }
      ol.appendChild(li);
    });
    return ol;
  }

  function sameOptions(a, b) {
    if (!a || !b || a.length !== b.length) { return false; }
    for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false; } }
    return true;
  }

  function answerBlock(s, refOpts) {
    var box = el("div", "answer " + (s.ok ? "ok" : "bad"));
    box.dataset.correct = s.ok ? "true" : "false";
    box.appendChild(el("span", "verdict", s.ok ? "✓ correct" : "✗ wrong"));
    if (s.s > 0 && s.s < 1) { box.appendChild(el("span", "kv", "score " + s.s.toFixed(2))); }
    var kv = el("span", "kv", "extracted ");
    kv.appendChild(el("code", null, s.x === null ? "none" : s.x));
    box.appendChild(kv);
    var kg = el("span", "kv", "gold ");
    kg.appendChild(el("code", null, s.g === null ? "" : s.g));
    box.appendChild(kg);
    if (s.d > 0) { box.appendChild(el("span", "kv", "draw " + (s.d + 1))); }
    if (s.st !== "ok") { box.appendChild(el("span", "badge warn", s.st)); }
    if (s.err) { box.appendChild(el("div", "kv", "error: " + s.err)); }
    if (s.o && refOpts && !sameOptions(s.o, refOpts)) {
      var sh = el("div", "kv", "options as shown in this draw:");
      box.appendChild(sh);
      box.appendChild(optionList(s.o, s.g));
    }
    box.appendChild(el("pre", "raw", T[s.raw]));
    return box;
  }

  function side(r, arr, refOpts) {
    var run = D.runs[r];
    var box = el("div", "side");
    box.dataset.run = String(r);
    var head = el("div", "side-head");
    head.appendChild(dot(run.color));
    head.appendChild(el("span", "run-label", run.label));
    if (run.blind) { head.appendChild(el("span", "badge blind", "blind baseline")); }
    head.appendChild(el("span", "mean", (meanScore(arr) * 100).toFixed(0) + "%"));
    box.appendChild(head);
    var byCaption = new Map();
    arr.forEach(function (s) {
      if (!byCaption.has(s.ci)) { byCaption.set(s.ci, []); }
      byCaption.get(s.ci).push(s);
    });
    byCaption.forEach(function (draws, ci) {
      var s0 = draws[0];
      var len = s0.tok !== null && s0.tok !== undefined ? s0.tok + " tokens" :
        (T[s0.cap].trim() ? T[s0.cap].trim().split(/\s+/).length + " words" : "empty");
      if (ci < 0) {
        box.appendChild(el("div", "cap-label", "No caption: captioning failed"));
        draws.forEach(function (s) { box.appendChild(answerBlock(s, refOpts)); });
        return;
      }
      box.appendChild(el("div", "cap-label", "Caption " + (ci + 1) + " · " + len));
      var cap = T[s0.cap];
      if (cap.length) { box.appendChild(el("p", "caption", cap)); }
      else { box.appendChild(el("p", "caption empty", run.blind ? "(no caption: blind baseline)" : "(empty caption)")); }
      draws.forEach(function (s) { box.appendChild(answerBlock(s, refOpts)); });
    });
    return box;
  }

  function card(c) {
    var Q = c.Q;
    var art = el("article", "sample");
    art.dataset.bench = D.benchmarks[Q.b];
    art.dataset.question = Q.q;
    art.dataset.runs = c.sides.map(function (x) { return D.runs[x[0]].label; }).join("\n");
    var media = el("div", "s-media");
    var src = Q.im >= 0 ? D.images[Q.im] : null;
    if (src) {
      var img = el("img", "thumb");
      img.alt = "image " + Q.ik;
      img.src = src;
      media.appendChild(img);
    } else {
      media.appendChild(el("div", "nothumb", "no thumbnail"));
    }
    media.appendChild(el("div", "imgkey", Q.ik));
    art.appendChild(media);

    var body = el("div", "s-body");
    var meta = el("div", "s-meta");
    meta.appendChild(el("span", "tag bench", D.benchmarks[Q.b]));
    if (Q.cat !== null && Q.cat !== undefined) { meta.appendChild(el("span", "tag", Q.cat)); }
    meta.appendChild(el("span", "qid", "question " + Q.q));
    body.appendChild(meta);
    body.appendChild(el("p", "s-q", T[Q.qs]));
    var first = c.sides[0][1][0];
    if (first.o) {
      body.appendChild(optionList(first.o, first.g));
    } else if (first.g !== null) {
      var tg = el("p", "target", "Target answer: ");
      tg.appendChild(el("code", null, first.g));
      body.appendChild(tg);
    }
    var sides = el("div", "sides" + (c.sides.length === 2 ? " two" : ""));
    c.sides.forEach(function (x) { sides.appendChild(side(x[0], x[1], first.o)); });
    body.appendChild(sides);
    art.appendChild(body);
    return art;
  }

  function render() {
    var f = selected();
    chkDis.disabled = !f.compare;
    var all = cards(f);
    var pages = Math.max(1, Math.ceil(all.length / PAGE));
    if (page >= pages) { page = pages - 1; }
    var start = page * PAGE;
    var shown = all.slice(start, start + PAGE);
    list.replaceChildren();
    if (!shown.length) {
      list.appendChild(el("div", "empty-list", "No samples match these filters."));
    }
    shown.forEach(function (c) { list.appendChild(card(c)); });
    var what = f.compare ? "questions compared" : "questions";
    var msg = all.length ? (start + 1) + "–" + (start + shown.length) + " of " + all.length + " " + what :
      "0 " + what;
    $("sb-count").textContent = msg;
    $("sb-count2").textContent = msg;
    ["sb-prev", "sb-prev2"].forEach(function (id) { $(id).disabled = page === 0; });
    ["sb-next", "sb-next2"].forEach(function (id) { $(id).disabled = page >= pages - 1; });
  }

  function reset() { page = 0; render(); }
  [selBench, selRun, selCmp, chkWrong, chkDis].forEach(function (x) { x.addEventListener("change", reset); });
  search.addEventListener("input", reset);
  ["sb-prev", "sb-prev2"].forEach(function (id) {
    $(id).addEventListener("click", function () { if (page > 0) { page -= 1; render(); } });
  });
  ["sb-next", "sb-next2"].forEach(function (id) {
    $(id).addEventListener("click", function () { page += 1; render(); });
  });
  render();
}());
