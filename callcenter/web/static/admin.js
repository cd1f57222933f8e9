/* The admin pages: plain HTML forms that work without this file; it only asks before a removal
   (forms with data-confirm) and plays one recording at a time. */
(function () {
  "use strict";

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  document.addEventListener(
    "play",
    function (event) {
      document.querySelectorAll("audio").forEach(function (audio) {
        if (audio !== event.target) audio.pause();
      });
    },
    true
  );
})();
