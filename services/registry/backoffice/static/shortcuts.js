// Keyboard shortcuts of the back office (listed on "?"). Plain JavaScript, no build step.
// A link or button carrying data-shortcut="g r" (or "a", ...) is followed/clicked when that sequence is typed;
// rows carrying data-row are walked with j/k, opened with o or Enter, selected with x.
(function () {
  "use strict";
  var pending = "";
  var pendingTimer = null;

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-row]")); }

  function focusRow(offset) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.indexOf(document.activeElement);
    var next = index < 0 ? 0 : Math.min(Math.max(index + offset, 0), all.length - 1);
    all[next].focus();
  }

  function activate(element) {
    if (element.tagName === "A") { window.location.href = element.href; } else { element.click(); }
  }

  // Select-all: a checkbox data-select-all="NAME" sets every checkbox named NAME of its form (listened on the
  // document, because htmx replaces tables; no inline script, so a strict Content-Security-Policy holds).
  document.addEventListener("change", function (event) {
    var master = event.target;
    if (!master.matches || !master.matches("[data-select-all]")) { return; }
    var scope = master.form || document;
    var name = master.getAttribute("data-select-all");
    scope.querySelectorAll('input[type=checkbox][name="' + name.replace(/"/g, "") + '"]').forEach(function (box) {
      box.checked = master.checked;
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key;
    if (key === "?") {
      var help = document.getElementById("shortcuts-help");
      if (help && !help.open) { help.showModal(); event.preventDefault(); }
      return;
    }
    if (key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { search.focus(); event.preventDefault(); }
      return;
    }
    if (key === "j" || key === "k") { focusRow(key === "j" ? 1 : -1); event.preventDefault(); return; }
    var row = document.activeElement && document.activeElement.closest && document.activeElement.closest("[data-row]");
    if (row && (key === "o" || key === "Enter")) {
      var link = row.querySelector("a[href]");
      if (link) { window.location.href = link.href; event.preventDefault(); }
      return;
    }
    if (row && key === "x") {
      var box = row.querySelector("input[type=checkbox]");
      if (box) { box.click(); event.preventDefault(); }
      return;
    }
    var sequence = pending ? pending + " " + key : key;
    var exact = document.querySelector('[data-shortcut="' + sequence.replace(/"/g, "") + '"]');
    var prefix = document.querySelector('[data-shortcut^="' + sequence.replace(/"/g, "") + ' "]');
    clearTimeout(pendingTimer);
    if (exact) { pending = ""; activate(exact); event.preventDefault(); return; }
    if (prefix) { pending = sequence; pendingTimer = setTimeout(function () { pending = ""; }, 1500); return; }
    pending = "";
  });
})();
