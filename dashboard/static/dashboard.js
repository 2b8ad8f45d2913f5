// Refreshes the overview's table of tubes every two seconds from the
// JSON of api/tubes. The page works without it: it is rendered on the
// server, and a reload refreshes it.
(function () {
  "use strict";
  var table = document.getElementById("tubes");
  var live = document.getElementById("live");
  var hidden = document.getElementById("hidden");
  if (!table || !live || !window.fetch) {
    return;
  }
  var url = table.getAttribute("data-poll");
  var prefix = table.getAttribute("data-prefix");

  function duration(seconds) {
    var s = Math.round(seconds), out = "";
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (h > 0) { out += h + "h"; }
    if (h > 0 || m > 0) { out += m + "m"; }
    return out + (s % 60) + "s";
  }

  function cell(tr, text, numeric) {
    var td = document.createElement("td");
    td.textContent = String(text);
    if (numeric) { td.className = "n"; }
    tr.appendChild(td);
  }

  function render(data) {
    var rows = document.createDocumentFragment();
    data.tubes.forEach(function (t) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-tube", t.name);
      var td = document.createElement("td");
      var a = document.createElement("a");
      a.setAttribute("href", prefix + "tube?name=" + encodeURIComponent(t.name));
      a.textContent = t.name;
      td.appendChild(a);
      tr.appendChild(td);
      cell(tr, t.ready, true);
      cell(tr, t.urgent, true);
      cell(tr, t.reserved, true);
      cell(tr, t.delayed, true);
      cell(tr, t.buried, true);
      cell(tr, t.waiting, true);
      cell(tr, t.paused ? "yes, " + duration(t.pauseLeftSeconds) + " left" : "no", false);
      cell(tr, t.totalJobs, true);
      cell(tr, t.putRate === null ? "\u2013" : t.putRate.toFixed(1), true);
      rows.appendChild(tr);
    });
    if (data.tubes.length === 0) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      tr.className = "empty";
      td.colSpan = 10;
      td.textContent = "The store has no tubes.";
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    table.tBodies[0].replaceChildren(rows);
    if (hidden) {
      hidden.textContent = data.hidden > 0 ? data.hidden + " more tubes are not listed. " : "";
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (data) {
        render(data);
        live.textContent = "Live: refreshed at " + new Date().toLocaleTimeString() + ".";
      })
      .catch(function (e) {
        live.textContent = "Not refreshing (" + e.message + "); reload the page.";
      })
      .finally(function () { setTimeout(poll, 2000); });
  }
  live.textContent = "Live.";
  setTimeout(poll, 2000);
})();
