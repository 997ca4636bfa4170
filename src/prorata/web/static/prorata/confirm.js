// A form with data-confirm asks before it is sent (a static file, not an inline onsubmit: the
// Content-Security-Policy allows no inline script).
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
