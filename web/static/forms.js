// Every page: a form sent back with refused fields puts the focus on the first of them, in sight
// with its message beside it (QA: a long settings page showed only the banner at its top, the
// field in error 2,800 px below).
"use strict";
(function () {
  const first = document.querySelector("main [aria-invalid='true']");
  if (!first) return;
  first.focus({ preventScroll: true });
  first.scrollIntoView({ block: "center" });
})();
