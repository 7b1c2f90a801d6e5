// The creditor console's brand page: the preview follows the colours as they are typed.
(function () {
  "use strict";
  var preview = document.getElementById("console-preview");
  if (!preview) { return; }
  var colour = /^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$/;
  document.querySelectorAll("input[data-preview]").forEach(function (input) {
    input.addEventListener("input", function () {
      var value = input.value.trim();
      if (colour.test(value)) {
        preview.style.setProperty("--" + input.getAttribute("data-preview"), value.charAt(0) === "#" ? value : "#" + value);
      }
    });
  });
}());
