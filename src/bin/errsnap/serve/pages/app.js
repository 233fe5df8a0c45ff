// errsnap dashboard: live rows on the groups page (server-sent events).
// The server sends `change` when a new event is stored; the rows are
// fetched again as HTML the server rendered (and escaped).
(function () {
  "use strict";
  var rows = document.getElementById("live-rows");
  var state = document.getElementById("live-state");
  if (!rows || !window.EventSource) { return; }
  var url = new URL(window.location.href);
  url.searchParams.set("fragment", "rows");
  var source = new EventSource(rows.getAttribute("data-live"));
  var busy = false;
  source.addEventListener("change", function () {
    if (busy) { return; }
    busy = true;
    fetch(url.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          rows.innerHTML = html;
          document.body.setAttribute("data-updated", String(Date.now()));
          if (state) { state.textContent = "live (updated " + new Date().toLocaleTimeString() + ")"; }
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  });
  source.onerror = function () { if (state) { state.textContent = "reconnecting"; } };
  source.onopen = function () { if (state) { state.textContent = "live"; } };
})();
