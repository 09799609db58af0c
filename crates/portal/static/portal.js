// opencm portal: progressive enhancement only. Every page works without this script; it adds
// a copy button to the `opencm card` command a request page hands off to.
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = button.getAttribute("data-done");
    });
  });
});
