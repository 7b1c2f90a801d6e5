// Progressive enhancement only: the page works without it.
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
