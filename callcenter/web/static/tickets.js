/* A ticket page (callcenter/tickets/templates/ticket.html): while a call on it (or one placed from it,
   data-call) is in progress or its recording is being prepared, ask /tickets/{id}/state every few
   seconds and reload when the page would show something else (the call ended, the recording is ready).
   Works without it: reload by hand. */
(function () {
  "use strict";
  var live = document.getElementById("ticket-live");
  if (!live || live.dataset.waiting !== "true") return;
  var url = "/tickets/" + encodeURIComponent(live.dataset.ticket) + "/state" +
    (live.dataset.call ? "?call=" + encodeURIComponent(live.dataset.call) : "");
  var stamp = live.dataset.stamp;
  var misses = 0;

  function check() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (state) {
        misses = 0;
        if (state.stamp !== stamp) { window.location.reload(); return; }
        if (state.waiting) window.setTimeout(check, 4000);
      })
      .catch(function () {
        misses += 1;
        if (misses < 30) window.setTimeout(check, 8000);
      });
  }
  window.setTimeout(check, 1000);
})();
