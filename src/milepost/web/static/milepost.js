/* Milepost progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  function parseAmount(text, digits) {
    var t = (text || "").trim().replace(/[\s,']/g, "");
    if (!/^\d+(\.\d+)?$/.test(t)) return null;
    var parts = t.split(".");
    var frac = parts[1] || "";
    if (frac.length > digits) return null;
    while (frac.length < digits) frac += "0";
    return parseInt(parts[0] + frac, 10);
  }

  function formatMinor(minor, currency, digits, locale) {
    try {
      return new Intl.NumberFormat(locale, { style: "currency", currency: currency,
        minimumFractionDigits: digits, maximumFractionDigits: digits }).format(minor / Math.pow(10, digits));
    } catch (e) {
      return (minor / Math.pow(10, digits)).toFixed(digits) + " " + currency;
    }
  }

  function initBuilder(form) {
    if (form.hasAttribute("data-js-ready")) return;
    form.setAttribute("data-js-ready", "");
    var list = form.querySelector("#ms-rows");
    var tpl = document.getElementById("ms-row-template");
    var totalOut = form.querySelector("[data-total]");
    if (!list) return;
    var currency = form.getAttribute("data-currency") || "USD";
    var digits = parseInt(form.getAttribute("data-digits") || "2", 10);
    var locale = form.getAttribute("data-locale") || "en-US";
    var currencySelect = form.querySelector("#currency");

    function updateTotal() {
      if (!totalOut) return;
      var total = 0, bad = false;
      list.querySelectorAll("[data-amount]").forEach(function (input) {
        if (!input.value.trim()) return;
        var v = parseAmount(input.value, digits);
        if (v === null) bad = true; else total += v;
      });
      totalOut.textContent = formatMinor(total, currency, digits, locale) + (bad ? " (some amounts unreadable)" : "");
    }

    function renumber() {
      var rows = list.querySelectorAll("[data-row]");
      rows.forEach(function (row, i) {
        row.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
          ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
            var v = el.getAttribute(attr);
            if (v) el.setAttribute(attr, v.replace(/milestones\[\d+\]/g, "milestones[" + i + "]")
              .replace(/^ms-\d+-/, "ms-" + i + "-").replace(/milestones-\d+-/g, "milestones-" + i + "-"));
          });
        });
        var label = row.querySelector("[data-row-label]");
        if (label) label.textContent = "Milestone " + (i + 1);
        row.querySelectorAll("[data-move], [data-remove]").forEach(function (btn) {
          var kind = btn.hasAttribute("data-remove") ? "remove" : btn.getAttribute("data-move");
          btn.value = kind + "-" + i;
          var what = kind === "remove" ? "Remove" : "Move";
          btn.setAttribute("aria-label", what + " milestone " + (i + 1) + (kind === "remove" ? "" : " " + kind));
        });
      });
      updateTotal();
    }

    form.addEventListener("click", function (ev) {
      var btn = ev.target.closest("button");
      if (!btn || !form.contains(btn)) return;
      var row = btn.closest("[data-row]");
      if (btn.hasAttribute("data-add-row") && tpl) {
        ev.preventDefault();
        var node = tpl.content.firstElementChild.cloneNode(true);
        list.appendChild(node);
        renumber();
        var first = node.querySelector("input");
        if (first) first.focus();
      } else if (row && btn.hasAttribute("data-remove")) {
        ev.preventDefault();
        if (list.querySelectorAll("[data-row]").length <= 1) return;
        var next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        renumber();
        if (next) next.querySelector("input").focus();
      } else if (row && btn.hasAttribute("data-move")) {
        ev.preventDefault();
        var up = btn.getAttribute("data-move") === "up";
        var sibling = up ? row.previousElementSibling : row.nextElementSibling;
        if (!sibling) return;
        if (up) list.insertBefore(row, sibling); else list.insertBefore(sibling, row);
        renumber();
        var same = row.querySelector("[data-move='" + (up ? "up" : "down") + "']");
        if (same) same.focus();
      }
    });
    form.addEventListener("input", function (ev) {
      if (ev.target.matches("[data-amount]")) updateTotal();
    });
    if (currencySelect) {
      currencySelect.addEventListener("change", function () {
        currency = currencySelect.value;
        var probe = new Intl.NumberFormat("en", { style: "currency", currency: currency });
        digits = probe.resolvedOptions().maximumFractionDigits;
        updateTotal();
      });
    }
    updateTotal();
  }

  function initSplit(form) {
    if (form.hasAttribute("data-js-ready")) return;
    form.setAttribute("data-js-ready", "");
    var input = form.querySelector("[name=seller_amount]");
    var out = form.querySelector("[data-split-rest]");
    if (!input || !out) return;
    var maxText = form.getAttribute("data-max") || "0";
    var digits = (maxText.split(".")[1] || "").length;
    var max = parseAmount(maxText, digits);
    input.addEventListener("input", function () {
      var v = parseAmount(input.value, digits);
      out.textContent = (v === null || v > max) ? "—" : ((max - v) / Math.pow(10, digits)).toFixed(digits);
    });
  }

  function init(root) {
    root.querySelectorAll("[data-builder]").forEach(initBuilder);
    root.querySelectorAll("form[data-split]").forEach(initSplit);
    root.querySelectorAll("[data-detect-timezone]").forEach(function (select) {
      if (select.value !== "UTC") return;
      try {
        var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
        if (tz && select.querySelector("option[value='" + tz + "']")) select.value = tz;
      } catch (e) { /* keep UTC */ }
    });
    root.querySelectorAll("[data-back]:not([data-js-ready])").forEach(function (a) {
      a.setAttribute("data-js-ready", "");
      a.addEventListener("click", function (ev) {
        if (window.history.length > 1) { ev.preventDefault(); window.history.back(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // htmx swapped in a fresh builder form (template fill, split): wire it up again.
  document.addEventListener("htmx:afterSettle", function () { init(document); });
})();
