/* ---- leaderboards: sorting, CSV export ---- */
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

/* The rows as shown (in their current order), then the reported rows. */
document.querySelectorAll("button.csv-board").forEach(function (btn) {
  btn.addEventListener("click", function () {
    var gi = Number(btn.dataset.group);
    var board = DATA.boards[gi];
    var table = document.querySelector("table.board[data-group=\"" + (gi + 1) + "\"]");
    var rows = [];
    table.querySelectorAll("tbody.runs tr").forEach(function (tr) {
      var r = board.rows[tr.dataset.label];
      if (r) { rows.push(r); }
    });
    download("leaderboard" + (DATA.boards.length > 1 ? "-" + (gi + 1) : "") + ".csv",
             csvText(board.header, rows.concat(board.reference)));
  });
});

/* ---- pickers: one panel of a set at a time (significance matrices, length charts) ---- */
document.querySelectorAll("select.panel-pick").forEach(function (sel) {
  sel.addEventListener("change", function () {
    var box = document.getElementById(sel.dataset.target);
    Array.prototype.forEach.call(box.children, function (p) {
      if (p.classList.contains("panel")) { p.hidden = p.dataset.index !== sel.value; }
    });
    var detail = box.dataset.detail && document.getElementById(box.dataset.detail);
    if (detail) { detail.textContent = "Select a cell for its interval, p-value and number of questions."; }
  });
});

/* ---- matrix cells: the full result on click, tap or keyboard focus (not only on hover) ---- */
document.querySelectorAll(".panels[data-detail]").forEach(function (box) {
  var detail = document.getElementById(box.dataset.detail);
  function show(btn) {
    box.querySelectorAll("td.picked").forEach(function (td) { td.classList.remove("picked"); });
    btn.parentNode.classList.add("picked");
    detail.textContent = btn.title;
  }
  box.querySelectorAll("button.mcell").forEach(function (btn) {
    btn.addEventListener("click", function () { show(btn); });
    btn.addEventListener("focus", function () { show(btn); });
  });
});
