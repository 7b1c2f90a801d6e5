// Progressive enhancement only: the page works without it.
(function () {
  "use strict";
  // A part of a form shown only for one choice of a radio group: data-shown-when="name=value".
  document.querySelectorAll("[data-shown-when]").forEach(function (part) {
    var rule = part.getAttribute("data-shown-when").split("=");
    var radios = document.querySelectorAll('input[type=radio][name="' + rule[0] + '"]');
    function update() {
      var chosen = document.querySelector('input[type=radio][name="' + rule[0] + '"]:checked');
      part.hidden = !(chosen && chosen.value === rule[1]) && !part.querySelector("[aria-invalid=true]");
    }
    radios.forEach(function (radio) { radio.addEventListener("change", update); });
    update();
  });
})();

(function () {
  "use strict";
  var label = document.documentElement.getAttribute("data-copy-label") || "Copy";
  var done = document.documentElement.getAttribute("data-copied-label") || "Copied";
  if (!navigator.clipboard) return;
  document.querySelectorAll("[data-copy]").forEach(function (el) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "copy";
    b.textContent = label;
    b.setAttribute("aria-label", label + ": " + el.textContent.trim());
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(el.getAttribute("data-copy")).then(function () {
        b.textContent = done;
        setTimeout(function () { b.textContent = label; }, 2000);
      });
    });
    el.insertAdjacentElement("afterend", b);
  });
})();

(function () {
  "use strict";
  // The waiting page after a payment: ask whether the provider has answered, and move on as soon as it
  // has (the page's meta refresh does the same, more slowly, without JavaScript).
  var waiting = document.getElementById("waiting");
  if (!waiting || !window.fetch) return;
  var url = waiting.getAttribute("data-status-url");
  var every = (parseInt(waiting.getAttribute("data-poll-seconds"), 10) || 2) * 1000;
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {waiting: true}; })
      .then(function (s) { if (s.waiting === false) { window.location.reload(); } else { setTimeout(poll, every); } })
      .catch(function () { setTimeout(poll, every * 2); });
  }
  setTimeout(poll, every);
})();
