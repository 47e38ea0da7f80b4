/* ---- sample browser: one card per image, filters kept in location.hash, compare mode, CSV ---- */
function sampleBrowser(D) {
  var list = document.getElementById("sb-list");
  if (!D || !list) { return; }
  var T = D.text;
  var PAGE = 10;
  var PROBABILISTIC = { expected: true, sampled: true };
  var page = 0;
  var written = null;  /* the hash this script last wrote, so its own change is not applied twice */

  /* Questions in the payload's order, each with its answers per run. */
  var questions = [];
  var byKey = new Map();
  D.samples.forEach(function (s) {
    var key = s.b + "\u0000" + s.q;
    var Q = byKey.get(key);
    if (!Q) {
      Q = { key: key, b: s.b, q: s.q, cat: s.cat, im: s.im, ik: s.ik, qs: s.qs, runs: new Map() };
      byKey.set(key, Q);
      questions.push(Q);
    }
    if (!Q.runs.has(s.r)) { Q.runs.set(s.r, []); }
    Q.runs.get(s.r).push(s);
  });

  var $ = function (id) { return document.getElementById(id); };
  var selBench = $("sb-bench"), selRun = $("sb-run"), selCmp = $("sb-compare");
  var chkWrong = $("sb-wrong"), chkDis = $("sb-disagree"), search = $("sb-search");
  var selOutcome = $("sb-outcome");  /* absent when no run recorded outcomes */
  var summary = $("sb-summary");

  D.benchmarks.forEach(function (b, i) {
    var o = el("option", null, b); o.value = String(i); selBench.appendChild(o);
  });
  D.runs.forEach(function (r, i) {
    var label = r.label + (r.blind ? " (blind baseline)" : "");
    var o = el("option", null, label); o.value = String(i); selRun.appendChild(o);
    var o2 = el("option", null, label); o2.value = String(i); selCmp.appendChild(o2);
  });

  function isWrong(s) { return !s.ok; }
  /* The answers a side keeps under the wrong-only and outcome filters. */
  function keep(arr, f) {
    return arr.filter(function (s) { return (!f.wrong || isWrong(s)) && (!f.outcome || s.oc === f.outcome); });
  }
  /* A question is right for a run when most of its answers (captions x draws) are. */
  function right(arr) {
    var k = 0;
    arr.forEach(function (s) { if (s.ok) { k += 1; } });
    return k * 2 > arr.length;
  }
  function lower(i) { return T[i].toLowerCase(); }
  function textHas(s, q) { return lower(s.cap).indexOf(q) >= 0 || lower(s.raw).indexOf(q) >= 0; }
  function questionHas(Q, q) {
    if (lower(Q.qs).indexOf(q) >= 0 || String(Q.q).toLowerCase().indexOf(q) >= 0 ||
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
      wrong: chkWrong.checked, disagree: chkDis.checked, outcome: selOutcome ? selOutcome.value : "",
      raw: search.value, q: search.value.trim().toLowerCase()
    };
  }

  /* The question with the answers the filters keep, or null. */
  function item(Q, f) {
    if (f.bench >= 0 && Q.b !== f.bench) { return null; }
    if (f.q && !questionHas(Q, f.q)) { return null; }
    if (f.compare) {
      var A = Q.runs.get(f.run), B = Q.runs.get(f.cmp);
      if (!A || !B) { return null; }
      if ((f.wrong || f.outcome) && !keep(A, f).length && !keep(B, f).length) { return null; }
      if (f.disagree && right(A) === right(B)) { return null; }
      return { Q: Q, sides: [[f.run, A], [f.cmp, B]] };
    }
    var sides = [];
    Q.runs.forEach(function (arr, r) {
      if (f.run >= 0 && r !== f.run) { return; }
      var shown = keep(arr, f);
      if (shown.length) { sides.push([r, shown]); }
    });
    return sides.length ? { Q: Q, sides: sides } : null;
  }

  /* Kept questions grouped by image, in order of first appearance. */
  function cards(f) {
    var out = [], at = new Map(), n = 0;
    questions.forEach(function (Q) {
      var it = item(Q, f);
      if (!it) { return; }
      n += 1;
      var key = Q.b + "\u0000" + Q.ik;
      if (!at.has(key)) { at.set(key, out.length); out.push({ b: Q.b, im: Q.im, ik: Q.ik, items: [] }); }
      out[at.get(key)].items.push(it);
    });
    out.questions = n;
    return out;
  }

  /* ---- rendering ---- */
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
  function kv(label, value) {
    var k = el("span", "kv", label + " ");
    k.appendChild(el("code", null, value));
    return k;
  }
  function lengthText(s) {
    var cap = T[s.cap].trim();
    if (D.length_unit !== "words" && s.tok !== null && s.tok !== undefined) { return s.tok + " " + D.length_unit; }
    return cap ? cap.split(/\s+/).length + " words" : "empty";
  }

  function answerBlock(s, refOpts, multi) {
    var run = D.runs[s.r];
    var box = el("div", "answer " + (s.ok ? "ok" : "bad"));
    box.dataset.correct = s.ok ? "true" : "false";
    box.appendChild(el("span", "verdict", s.ok ? "✓ right" : "✗ wrong"));
    if (s.oc) {
      var oc = el("span", "badge oc " + s.oc, s.oc);
      oc.dataset.outcome = s.oc;
      oc.title = "what the judge answered (its top choice)";
      box.appendChild(oc);
    }
    box.dataset.outcome = s.oc || "";
    if (multi && s.ci >= 0) { box.appendChild(el("span", "kv", "caption " + (s.ci + 1))); }
    if (s.top !== null && s.top !== undefined && PROBABILISTIC[run.estimator]) {
      var t = kv("top choice", s.top);
      t.appendChild(document.createTextNode(" p " + s.pt.toFixed(2)));
      box.appendChild(t);
      if (run.estimator === "sampled") { box.appendChild(kv("sampled", s.x === null ? "none" : s.x)); }
      box.appendChild(el("span", "kv", (run.estimator === "expected" ? "expected score " : "score ") + s.s.toFixed(2)));
    } else {
      var ans = kv("answer", s.x === null ? "none" : s.x);
      if (s.pt !== null && s.pt !== undefined && s.top === s.x) { ans.appendChild(document.createTextNode(" p " + s.pt.toFixed(2))); }
      box.appendChild(ans);
      if (s.s > 0 && s.s < 1) { box.appendChild(el("span", "kv", "score " + s.s.toFixed(2))); }
    }
    box.appendChild(kv("gold", s.g === null ? "" : s.g));
    if (s.d > 0) { box.appendChild(el("span", "kv", "draw " + (s.d + 1))); }
    if (s.st !== "ok") { box.appendChild(el("span", "badge warn", s.st)); }
    if (s.err) { box.appendChild(el("div", "kv", "error: " + s.err)); }
    if (s.o && refOpts && !sameOptions(s.o, refOpts)) {
      box.appendChild(el("div", "kv", "options as shown in this draw:"));
      box.appendChild(optionList(s.o, s.g));
    }
    box.appendChild(el("pre", "raw", T[s.raw]));
    return box;
  }

  /* Each run's captions of this image, once (the first answer of each caption index carries it). */
  function captionsOf(c, r) {
    var seen = new Map();
    c.items.forEach(function (it) {
      it.sides.forEach(function (x) {
        if (x[0] !== r) { return; }
        x[1].forEach(function (s) { if (!seen.has(s.ci)) { seen.set(s.ci, s); } });
      });
    });
    return Array.from(seen.values()).sort(function (a, b) { return a.ci - b.ci; });
  }

  function captionSide(c, r) {
    var run = D.runs[r];
    var box = el("div", "side");
    box.dataset.run = String(r);
    var head = el("div", "side-head");
    head.appendChild(dot(run.color));
    head.appendChild(el("span", "run-label", run.label));
    if (run.blind) { head.appendChild(el("span", "badge blind", "blind baseline")); }
    var total = 0, ok = 0;
    c.items.forEach(function (it) {
      it.sides.forEach(function (x) {
        if (x[0] === r) { x[1].forEach(function (s) { total += 1; if (s.ok) { ok += 1; } }); }
      });
    });
    head.appendChild(el("span", "mean", ok + " of " + total + " answer" + (total === 1 ? "" : "s") + " right"));
    box.appendChild(head);
    captionsOf(c, r).forEach(function (s) {
      if (s.ci < 0) { box.appendChild(el("div", "cap-label", "No caption: captioning failed")); return; }
      box.appendChild(el("div", "cap-label", "Caption " + (s.ci + 1) + " · " + lengthText(s)));
      var cap = T[s.cap];
      if (cap.length) { box.appendChild(el("p", "caption", cap)); }
      else { box.appendChild(el("p", "caption empty", run.blind ? "(no caption: blind baseline)" : "(empty caption)")); }
    });
    return box;
  }

  /* Word diff: words of A outside a longest common subsequence with B, and the reverse. */
  var MAX_WORDS = 400;
  function norm(w) { return w.toLowerCase().replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ""); }
  function commonMarks(a, b) {
    var n = a.length, m = b.length, w = m + 1;
    var L = new Uint16Array((n + 1) * w);
    for (var i = n - 1; i >= 0; i--) {
      for (var j = m - 1; j >= 0; j--) {
        L[i * w + j] = norm(a[i]) === norm(b[j]) ? L[(i + 1) * w + j + 1] + 1 :
          Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
      }
    }
    var inA = new Array(n).fill(false), inB = new Array(m).fill(false);
    i = 0; j = 0;
    while (i < n && j < m) {
      if (norm(a[i]) === norm(b[j])) { inA[i] = true; inB[j] = true; i += 1; j += 1; }
      else if (L[(i + 1) * w + j] >= L[i * w + j + 1]) { i += 1; }
      else { j += 1; }
    }
    return [inA, inB];
  }
  function diffParagraph(words, common, cls, cut) {
    var p = el("p");
    words.forEach(function (w, i) {
      if (i) { p.appendChild(document.createTextNode(" ")); }
      if (common[i]) { p.appendChild(document.createTextNode(w)); } else { p.appendChild(el("span", cls, w)); }
    });
    if (cut) { p.appendChild(el("span", "muted", " … (first " + MAX_WORDS + " words)")); }
    return p;
  }
  function wordDiff(c, ra, rb) {
    var A = captionsOf(c, ra), B = captionsOf(c, rb);
    var out = [];
    A.forEach(function (sa) {
      var sb = B.find(function (x) { return x.ci === sa.ci; });
      if (!sb || sa.ci < 0) { return; }
      var wa = T[sa.cap].split(/\s+/).filter(Boolean), wb = T[sb.cap].split(/\s+/).filter(Boolean);
      var cut = wa.length > MAX_WORDS || wb.length > MAX_WORDS;
      wa = wa.slice(0, MAX_WORDS); wb = wb.slice(0, MAX_WORDS);
      var marks = commonMarks(wa, wb);
      var det = el("details", "diff");
      det.appendChild(el("summary", null, "Word diff" + (A.length > 1 ? " of caption " + (sa.ci + 1) : "") +
        ": only in " + D.runs[ra].label + " / only in " + D.runs[rb].label));
      var body = el("div", "diff-body");
      body.appendChild(diffParagraph(wa, marks[0], "only-a", cut));
      body.appendChild(diffParagraph(wb, marks[1], "only-b", cut));
      det.appendChild(body);
      out.push(det);
    });
    return out;
  }

  function questionBlock(it, f) {
    var Q = it.Q;
    var sec = el("section", "question");
    sec.dataset.key = Q.key;
    sec.dataset.question = Q.q;
    sec.tabIndex = -1;
    var meta = el("div", "s-meta");
    if (Q.cat !== null && Q.cat !== undefined) { meta.appendChild(el("span", "tag", Q.cat)); }
    meta.appendChild(el("span", "qid", "question " + Q.q));
    var link = el("a", "permalink", "link to this question");
    link.href = hashFor(f, Q);
    meta.appendChild(link);
    sec.appendChild(meta);
    sec.appendChild(el("p", "s-q", T[Q.qs]));
    var first = it.sides[0][1][0];
    if (first.o) {
      sec.appendChild(optionList(first.o, first.g));
    } else if (first.g !== null) {
      var tg = el("p", "target", "Target answer: ");
      tg.appendChild(el("code", null, first.g));
      sec.appendChild(tg);
    }
    var answers = el("div", "answers" + (it.sides.length === 2 && f.compare ? " two" : ""));
    it.sides.forEach(function (x) {
      var side = el("div", "ans-side");
      side.dataset.run = String(x[0]);
      side.appendChild(el("div", "who", D.runs[x[0]].label));
      var multi = new Set(x[1].map(function (s) { return s.ci; })).size > 1;
      x[1].forEach(function (s) { side.appendChild(answerBlock(s, first.o, multi)); });
      answers.appendChild(side);
    });
    sec.appendChild(answers);
    return sec;
  }

  function card(c, f) {
    var art = el("article", "sample");
    art.dataset.bench = D.benchmarks[c.b];
    art.dataset.image = c.ik;
    var runsHere = [];
    c.items.forEach(function (it) {
      it.sides.forEach(function (x) { if (runsHere.indexOf(x[0]) < 0) { runsHere.push(x[0]); } });
    });
    art.dataset.runs = runsHere.map(function (r) { return D.runs[r].label; }).join("\n");
    var media = el("div", "s-media");
    var src = c.im >= 0 ? D.images[c.im] : null;
    if (src) {
      var img = el("img", "thumb");
      img.alt = "image " + c.ik;
      img.src = src;
      media.appendChild(img);
    } else {
      media.appendChild(el("div", "nothumb", "no thumbnail"));
    }
    media.appendChild(el("div", "imgkey", c.ik));
    art.appendChild(media);
    var body = el("div", "s-body");
    var meta = el("div", "s-meta");
    meta.appendChild(el("span", "tag bench", D.benchmarks[c.b]));
    meta.appendChild(el("span", "qid", c.items.length + " question" + (c.items.length === 1 ? "" : "s") + " shown"));
    body.appendChild(meta);
    var sides = el("div", "sides" + (f.compare ? " two" : ""));
    runsHere.forEach(function (r) { sides.appendChild(captionSide(c, r)); });
    body.appendChild(sides);
    if (f.compare) { wordDiff(c, f.run, f.cmp).forEach(function (d) { body.appendChild(d); }); }
    c.items.forEach(function (it) { body.appendChild(questionBlock(it, f)); });
    art.appendChild(body);
    return art;
  }

  /* ---- compare summary ---- */
  function showSummary(f) {
    if (!f.compare) { summary.hidden = true; return; }
    var onlyA = 0, onlyB = 0, both = 0, neither = 0;
    var scope = { bench: f.bench, q: f.q, run: f.run, cmp: f.cmp, compare: true, wrong: false, disagree: false,
                  outcome: "" };
    questions.forEach(function (Q) {
      var it = item(Q, scope);
      if (!it) { return; }
      var a = right(it.sides[0][1]), b = right(it.sides[1][1]);
      if (a && b) { both += 1; } else if (a) { onlyA += 1; } else if (b) { onlyB += 1; } else { neither += 1; }
    });
    var A = D.runs[f.run].label, B = D.runs[f.cmp].label;
    summary.replaceChildren();
    summary.appendChild(document.createTextNode("On the " + (onlyA + onlyB + both + neither) +
      " questions both answered: "));
    [["only " + A + " right", onlyA, "only-a"], ["only " + B + " right", onlyB, "only-b"], ["both right", both, "both"],
     ["both wrong", neither, "neither"]].forEach(function (x, i) {
      if (i) { summary.appendChild(document.createTextNode(" · ")); }
      var span = el("span", null, x[0] + ": ");
      span.dataset.count = x[2];
      span.appendChild(el("b", null, x[1]));
      summary.appendChild(span);
    });
    summary.appendChild(document.createTextNode(". The paired test is in the significance matrix."));
    summary.hidden = false;
  }

  /* ---- location.hash: #samples?bench=..&run=..&cmp=..&wrong=1&dis=1&q=..&page=N&qb=..&qid=.. ---- */
  function hashFor(f, target) {
    var p = new URLSearchParams();
    if (f.bench >= 0) { p.set("bench", D.benchmarks[f.bench]); }
    if (f.run >= 0) { p.set("run", D.runs[f.run].label); }
    if (f.cmp >= 0) { p.set("cmp", D.runs[f.cmp].label); }
    if (f.wrong) { p.set("wrong", "1"); }
    if (f.disagree) { p.set("dis", "1"); }
    if (f.outcome) { p.set("oc", f.outcome); }
    if (f.raw.trim()) { p.set("q", f.raw); }
    if (target) { p.set("qb", D.benchmarks[target.b]); p.set("qid", target.q); }
    else if (page > 0) { p.set("page", String(page + 1)); }
    return "#samples?" + p.toString();
  }
  function writeHash() {
    var h = hashFor(selected(), null);
    written = h;
    try { history.replaceState(null, "", h); } catch (e) { location.replace(h); }
  }
  function pick(sel, index) { sel.value = index >= 0 ? String(index) : ""; }
  function runIndex(label) {
    for (var i = 0; i < D.runs.length; i++) { if (D.runs[i].label === label) { return i; } }
    return -1;
  }
  function readHash() {
    var h = location.hash;
    if (h.indexOf("#samples?") !== 0) { return null; }
    var p = new URLSearchParams(h.slice("#samples?".length));
    pick(selBench, D.benchmarks.indexOf(p.get("bench")));
    pick(selRun, runIndex(p.get("run")));
    pick(selCmp, runIndex(p.get("cmp")));
    chkWrong.checked = p.get("wrong") === "1";
    chkDis.checked = p.get("dis") === "1";
    if (selOutcome) { selOutcome.value = D.outcomes.indexOf(p.get("oc")) >= 0 ? p.get("oc") : ""; }
    search.value = p.get("q") || "";
    page = Math.max(0, (parseInt(p.get("page"), 10) || 1) - 1);
    return p.get("qid") === null ? { page: true } : { b: D.benchmarks.indexOf(p.get("qb")), q: p.get("qid") };
  }
  function clearFilters() {
    [selBench, selRun, selCmp].forEach(function (s) { s.value = ""; });
    chkWrong.checked = false; chkDis.checked = false; search.value = "";
    if (selOutcome) { selOutcome.value = ""; }
  }
  function findCard(all, target) {
    for (var i = 0; i < all.length; i++) {
      if (all[i].items.some(function (it) { return it.Q.b === target.b && it.Q.q === target.q; })) { return i; }
    }
    return -1;
  }

  /* ---- the list ---- */
  function render(target) {
    var f = selected();
    chkDis.disabled = !f.compare;
    var all = cards(f);
    if (target && target.q !== undefined) {
      var at = findCard(all, target);
      if (at < 0) { clearFilters(); f = selected(); all = cards(f); at = findCard(all, target); }
      if (at >= 0) { page = Math.floor(at / PAGE); }
    }
    var pages = Math.max(1, Math.ceil(all.length / PAGE));
    if (page >= pages) { page = pages - 1; }
    var start = page * PAGE;
    var shown = all.slice(start, start + PAGE);
    list.replaceChildren();
    if (!shown.length) { list.appendChild(el("div", "empty-list", "No samples match these filters.")); }
    shown.forEach(function (c) { list.appendChild(card(c, f)); });
    var what = (f.compare ? " compared" : "");
    var msg = all.length ? (start + 1) + "–" + (start + shown.length) + " of " + all.length + " images · " +
      all.questions + " questions" + what : "0 questions" + what;
    $("sb-count").textContent = msg;
    $("sb-count2").textContent = msg;
    ["sb-prev", "sb-prev2"].forEach(function (id) { $(id).disabled = page === 0; });
    ["sb-next", "sb-next2"].forEach(function (id) { $(id).disabled = page >= pages - 1; });
    showSummary(f);
    if (target && target.q !== undefined) { reveal(target); }
  }
  function reveal(target) {
    var key = target.b + "\u0000" + target.q;
    var hit = Array.prototype.find.call(list.querySelectorAll("section.question"),
                                        function (s) { return s.dataset.key === key; });
    if (!hit) { return; }
    hit.classList.add("target-hit");
    hit.scrollIntoView({ block: "center", behavior: "instant" });
    hit.focus({ preventScroll: true });
  }

  /* ---- CSV of every answer the filters keep (all pages) ---- */
  var CSV_HEADER = ["benchmark", "image", "question_id", "category", "captioner", "caption_index", "draw", "question",
                    "options", "gold", "answer", "top_choice", "p_top", "score", "right", "outcome", "status", "error",
                    "caption", "judge_output"];
  function sampleRows(f) {
    var rows = [];
    cards(f).forEach(function (c) {
      c.items.forEach(function (it) {
        it.sides.forEach(function (x) {
          x[1].forEach(function (s) {
            rows.push([D.benchmarks[s.b], s.ik, s.q, s.cat, D.runs[s.r].label, s.ci < 0 ? "" : s.ci + 1, s.d + 1,
                       T[s.qs], s.o ? s.o.map(function (o) { return T[o]; }).join(" | ") : "", s.g, s.x, s.top,
                       s.pt, s.s, s.ok ? "yes" : "no", s.oc, s.st, s.err, T[s.cap], T[s.raw]]);
          });
        });
      });
    });
    return rows;
  }
  $("sb-csv").addEventListener("click", function () { download("samples.csv", csvText(CSV_HEADER, sampleRows(selected()))); });

  function changed() { page = 0; render(null); writeHash(); }
  [selBench, selRun, selCmp, chkWrong, chkDis, selOutcome].forEach(function (x) {
    if (x) { x.addEventListener("change", changed); }
  });
  search.addEventListener("input", changed);
  function turn(delta) {
    page += delta;
    render(null);
    writeHash();
    $("samples").scrollIntoView({ block: "start", behavior: "instant" });
  }
  ["sb-prev", "sb-prev2"].forEach(function (id) { $(id).addEventListener("click", function () { if (page > 0) { turn(-1); } }); });
  ["sb-next", "sb-next2"].forEach(function (id) { $(id).addEventListener("click", function () { turn(1); }); });
  window.addEventListener("hashchange", function () {
    if (location.hash === written) { return; }
    var target = readHash();
    if (target) { render(target); }
  });
  var initial = readHash();
  render(initial);
  if (initial && initial.page) { $("samples").scrollIntoView({ block: "start", behavior: "instant" }); }
}
sampleBrowser(DATA);
