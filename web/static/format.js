// Shared by the pages: the message catalogue, and JSON calls that carry the CSRF token.
"use strict";
const I18N = JSON.parse(document.getElementById("i18n").textContent);
function t(key) { return I18N[key] || key; }
async function postJSON(url, body, csrf) {
  const res = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await res.json(); } catch (e) { data = {}; }
  return { ok: res.ok, status: res.status, data };
}
function liveSocket(onMessage, onState) {
  // Reconnects with back-off; the server sends a fresh snapshot on every (re)connect. A session
  // that has ended (logout elsewhere, a disabled login, a new password) goes to the login page:
  // nothing of a resident stays on the screen, and the page does not retry for ever.
  let delay = 500;
  function toLogin() {  // what was being typed about a resident does not outlive the session
    for (const k of Object.keys(sessionStorage)) if (k.startsWith("dialer.draft.")) sessionStorage.removeItem(k);
    location.replace("/login");
  }
  async function sessionGone() {
    try {
      const res = await fetch(location.pathname, { method: "HEAD", credentials: "same-origin", redirect: "manual", headers: { "X-Dialer-Poll": "1" } });
      return res.type === "opaqueredirect" || res.status === 401 || res.status === 403;
    } catch (e) { return false; }  // the server is unreachable: keep trying
  }
  function open() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = () => { delay = 500; onState(true); };
    ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
    ws.onclose = async (ev) => {
      onState(false);
      if (ev.code === 4001 || await sessionGone()) { toLogin(); return; }
      setTimeout(open, delay); delay = Math.min(delay * 2, 10000);
    };
  }
  open();
}
function elapsed(sinceIso) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(sinceIso)) / 1000));
  const m = Math.floor(s / 60);
  return m + ":" + String(s % 60).padStart(2, "0");
}
