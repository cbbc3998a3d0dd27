/* The portal's only script: no framework, nothing fetched but the portal's own JSON.
 * - [data-check-all=NAME] checkbox toggles every checkbox named NAME;
 * - [data-run-progress] container polls its data-status-url while any run is unfinished,
 *   updates each [data-run-id] status cell, and reloads the page when all are done. */
(function () {
  "use strict";
  document.querySelectorAll("[data-check-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll('input[type=checkbox][name="' + box.dataset.checkAll + '"]').forEach(function (b) {
        b.checked = box.checked;
      });
    });
  });

  var progress = document.querySelector("[data-run-progress]");
  if (!progress) { return; }
  var url = progress.dataset.statusUrl;
  var delay = 1000;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        (data.runs || []).forEach(function (run) {
          var cell = progress.querySelector('[data-run-id="' + run.id + '"]');
          if (cell) {
            cell.textContent = run.status_label;
            cell.className = "status " + run.status;
          }
        });
        if (data.all_finished) {
          window.location.reload();
        } else {
          delay = Math.min(delay * 1.5, 5000);
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, delay);
})();
