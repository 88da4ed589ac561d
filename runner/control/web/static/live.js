// c2d's pages: keep the parts marked data-live="URL" up to date.
// Every few seconds the element's fragment is fetched again from its URL (the same page code
// and the same access checks as the whole page) and swapped in when it changed. The server
// says "X-C2D-Live: done" once nothing there can change any more (the job has ended), and a
// fetch that lands on the sign-in page (the session ended) stops the updates too.
(function () {
  "use strict";
  var PERIOD_MS = 2000;

  function follow(element) {
    var url = element.getAttribute("data-live");
    var last = null;
    function again() {
      window.setTimeout(tick, PERIOD_MS);
    }
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "X-C2D-Live": "1" } })
        .then(function (response) {
          if (response.redirected || response.status === 401 || response.status === 403) {
            return null;
          }
          if (!response.ok) {
            again();
            return null;
          }
          var done = response.headers.get("X-C2D-Live") === "done";
          return response.text().then(function (html) {
            if (html !== last) {
              element.innerHTML = html;
              last = html;
            }
            if (!done) {
              again();
            }
          });
        })
        .catch(again);
    }
    again();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var parts = document.querySelectorAll("[data-live]");
    for (var i = 0; i < parts.length; i++) {
      follow(parts[i]);
    }
  });
})();
