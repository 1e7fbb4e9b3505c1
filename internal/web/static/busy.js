// busy.js marks a form's button busy once the form is sent: on a slow
// connection a person sees that the request is under way, and a second
// press sends nothing. It is the pages' only script, loaded by a nonce the
// CSP names; every page works without it.
"use strict";
document.addEventListener("submit", function (e) {
  var form = e.target;
  if (form.getAttribute("aria-busy") === "true") {
    e.preventDefault();
    return;
  }
  form.setAttribute("aria-busy", "true");
  var button = form.querySelector("button[type=submit]");
  if (button && button.dataset.busy) {
    button.dataset.idle = button.textContent;
    button.textContent = button.dataset.busy;
    button.setAttribute("aria-disabled", "true");
  }
});
// A page restored from the back/forward cache is not busy any more.
window.addEventListener("pageshow", function (e) {
  if (!e.persisted) return;
  document.querySelectorAll("form[aria-busy=true]").forEach(function (form) {
    form.removeAttribute("aria-busy");
    var button = form.querySelector("button[data-idle]");
    if (button) {
      button.textContent = button.dataset.idle;
      button.removeAttribute("aria-disabled");
    }
  });
});
