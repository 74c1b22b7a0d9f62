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
  // Reconnects with back-off; the server sends a fresh snapshot on every (re)connect.
  let delay = 500;
  function open() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = () => { delay = 500; onState(true); };
    ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
    ws.onclose = () => { onState(false); setTimeout(open, delay); delay = Math.min(delay * 2, 10000); };
  }
  open();
}
function elapsed(sinceIso) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(sinceIso)) / 1000));
  const m = Math.floor(s / 60);
  return m + ":" + String(s % 60).padStart(2, "0");
}
