// On every page of a logged-in user: when the session ends (idle timeout, logout in another tab, a
// disabled login, a new password), what the page shows of a resident leaves the screen at once
// and the page goes to the login page. Pages with a live connection learn it from that too
// (format.js liveSocket); the others (staff's case, export and letters pages) only from here.
"use strict";
(function () {
  const EVERY_MS = Math.min(Number(document.getElementById("session-check").dataset.everyMs) || 30000, 30000);
  function leave() {
    for (const k of Object.keys(sessionStorage)) if (k.startsWith("dialer.draft.") || k.startsWith("dialer.identity.")) sessionStorage.removeItem(k);
    const main = document.querySelector("main");
    if (main) main.replaceChildren();
    location.replace("/login");
  }
  async function check() {
    try {
      // a poll (X-Dialer-Poll): asking does not count as the person doing something
      const res = await fetch("/api/session", { credentials: "same-origin", redirect: "manual", headers: { "X-Dialer-Poll": "1" } });
      if (res.status === 401 || res.type === "opaqueredirect") { leave(); return; }
    } catch (e) { /* the server is unreachable: ask again later */ }
    setTimeout(check, EVERY_MS);
  }
  setTimeout(check, EVERY_MS);
})();
