// The supervisor's live floor: operators pushed over the WebSocket, campaign figures refreshed.
"use strict";
(function () {
  const agents = new Map();
  const body = document.getElementById("agents");
  const root = document.getElementById("sup");
  const canListen = root.dataset.canListen === "1";
  const english = document.documentElement.lang === "en";

  // Listen-in: the supervisor's own phone rings, then hears the operator's calls (audit-logged).
  // The page says whom the supervisor listens to, with 終了 (QA: one click went on listening to
  // every later call, with nothing on the page to say so or to stop it).
  const stopButton = document.getElementById("listen-stop");
  const listening = new Set();  // the listening channels' ids (the floor says them after a reload)
  function showStop() { stopButton.hidden = listening.size === 0; }
  async function listen(operatorId, mode) {
    const res = await postJSON("/api/supervisor/listen", { operator_id: operatorId, mode: mode }, root.dataset.csrf);
    const who = agents.has(operatorId) ? agents.get(operatorId).display_name : "";
    document.getElementById("listen-msg").textContent = res.ok
      ? t("sup.listen_ringing").replace("{name}", who).replace("{mode}", t("sup." + mode))  // (not "モニタ中" yet: QA)
      : t((res.data && res.data.error) || "error.generic");
    if (res.ok) listening.add(res.data.channel_id);
    showStop();
  }
  stopButton.addEventListener("click", async () => {
    let failed = null;
    for (const id of [...listening]) {
      const res = await postJSON("/api/supervisor/listen/stop", { channel_id: id }, root.dataset.csrf);
      // ended already (the phone was put down) is as good as ended now
      if (res.ok || (res.data && res.data.error === "error.no_listen")) listening.delete(id);
      else failed = (res.data && res.data.error) || "error.generic";
    }
    document.getElementById("listen-msg").textContent = failed ? t(failed) : t("sup.listen_stopped");
    showStop();
  });

  // Occupancy now (PACING.md): talking or wrapping up, over those logged in and not paused.
  const WORKING = new Set(["ready", "preview", "dialing", "talking", "wrap_up", "connecting"]);
  function renderOccupancy() {
    const working = [...agents.values()].filter((a) => WORKING.has(a.state));
    const busy = working.filter((a) => a.state === "talking" || a.state === "wrap_up").length;
    document.getElementById("occupancy").textContent =
      working.length ? Math.round((100 * busy) / working.length) + " % (" + busy + "/" + working.length + ")" : "—";
  }

  function render() {
    renderOccupancy();
    body.replaceChildren();
    for (const a of [...agents.values()].sort((x, y) => x.display_name.localeCompare(y.display_name))) {
      const tr = document.createElement("tr");
      tr.dataset.state = a.state;
      for (const text of [a.display_name, t("state." + a.state), a.since ? elapsed(a.since) : "—", a.inbound ? t("sup.on_inbound") : a.campaign ? a.campaign.name : "—"]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      // why a ready operator gets no calls (the campaign paused, outside its hours…): QA, they only
      // showed as 待機中 and the occupancy fell
      const why = a.notice ? "sup.why." + a.notice.replace(/^notice\./, "") : "";
      if (why && I18N[why]) {
        const note = document.createElement("span");
        note.className = "muted"; note.dataset.testid = "why-" + a.user_id; note.textContent = " (" + t(why) + ")";
        tr.children[1].appendChild(note);
      }
      const actions = document.createElement("td");
      if (canListen && a.phone_ready) {
        for (const mode of ["listen", "whisper", "barge"]) {
          const b = document.createElement("button");
          b.type = "button"; b.className = "small"; b.textContent = t("sup." + mode);
          b.dataset.testid = "listen-" + mode + "-" + a.user_id;
          b.addEventListener("click", () => listen(a.user_id, mode));
          actions.appendChild(b);
        }
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    }
  }

  // Each Asterisk server's link: "OK" with one server; "pbx1 OK・pbx2 ×" with several.
  const pbx = new Map();
  function renderPbx() {
    const mark = (up) => (up ? "OK" : "×");
    const text = pbx.size === 1 ? mark([...pbx.values()][0])
      : [...pbx.entries()].filter(([n]) => n).map(([n, up]) => n + " " + mark(up)).join(t("sep.list"));
    document.getElementById("pbx").textContent = text;
  }

  async function refresh() {
    // (asked by the page itself: not something the person did, for the idle session limit)
    const res = await fetch("/api/floor", { credentials: "same-origin", headers: { "X-Dialer-Poll": "1" } });
    if (!res.ok) return;
    const data = await res.json();
    pbx.clear();
    for (const [name, up] of Object.entries(data.pbx || {})) pbx.set(name, up);
    renderPbx();
    document.getElementById("db").textContent = "OK";  // this answer came from the database
    agents.clear();
    for (const a of data.agents) agents.set(a.user_id, a);
    if (data.listening) { listening.clear(); for (const id of data.listening) listening.add(id); showStop(); }
    render();
    const camp = document.getElementById("campaigns");
    camp.replaceChildren();
    const canEdit = document.getElementById("sup").dataset.canEdit === "1";
    const allDepartments = document.getElementById("sup").dataset.allDepartments === "1";
    for (const c of data.campaigns) {
      const tr = document.createElement("tr");
      const today = Object.entries(c.today || {}).map(([k, v]) => t("outcome." + k) + " " + v).join(t("sep.list"));
      const abandon = c.abandon_rate === null || c.dial_mode === "preview" ? "—" : (c.abandon_rate * 100).toFixed(1) + " %";
      const name = allDepartments ? c.department_id + ": " + c.name : c.name;
      for (const [text, cls] of [[name, ""], [t("cstatus." + c.status), "nowrap"], [t("mode." + c.dial_mode), "nowrap"],
                                 [String(c.untried), "num"], [String(c.retrying), "num"], [String(c.done), "num"],
                                 [abandon, "num"], [today, ""]]) {
        const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td);
      }
      // the calls' results above, what the operators recorded below (番号誤り on a call that ended
      // before the connection is a result of 接続前に切断 and an outcome of 番号誤り: QA)
      if ((c.recorded || []).length) {
        const recorded = document.createElement("div");
        recorded.className = "muted"; recorded.dataset.testid = "recorded-" + c.id;
        recorded.textContent = t("sup.recorded") + ": "
          + c.recorded.map((r) => (english ? r.en : r.ja) + " " + r.n).join(t("sep.list"));
        tr.children[7].appendChild(recorded);
      }
      if (c.abandon_rate !== null && c.abandon_rate > c.target_abandon) {  // over the target (≤ 3 %): flagged
        const cell = tr.children[6];
        cell.classList.add("error"); cell.dataset.testid = "abandon-over";
        cell.title = t("sup.abandon_over").replace("{target}", (c.target_abandon * 100).toFixed(1));
        cell.textContent += " ⚠";
      }
      if (c.no_households) {  // active with nobody to call: its operators would only wait (QA)
        const warn = document.createElement("span");
        warn.className = "error"; warn.dataset.testid = "no-households"; warn.textContent = " " + t("sup.no_households");
        tr.children[1].appendChild(warn);
      }
      if (c.no_caller_id) {  // active, yet no call is placed (never 非通知): say so by its status
        const warn = document.createElement("span");
        warn.className = "error"; warn.dataset.testid = "no-caller-id"; warn.textContent = " " + t("sup.no_caller_id");
        tr.children[1].appendChild(warn);
      }
      const link = document.createElement("td");
      link.className = "nowrap";  // (QA: 設／定)
      if (canEdit) {
        const a = document.createElement("a");
        a.href = "/supervisor/campaigns/" + c.id; a.textContent = t("camp.settings"); link.appendChild(a);
      }
      tr.appendChild(link);
      camp.appendChild(tr);
    }
  }

  liveSocket((msg) => {
    if (msg.type === "pbx") { pbx.set(msg.pbx || "", msg.up); renderPbx(); }
    if (msg.type === "database") document.getElementById("db").textContent = msg.up ? "OK" : "×";
    if (msg.type === "floor_agent") { agents.set(msg.user_id, msg); render(); }
  }, (up) => { if (up) refresh(); });
  setInterval(render, 1000);
  setInterval(refresh, 5000);  // the campaigns' figures (operators come over the WebSocket)
})();
