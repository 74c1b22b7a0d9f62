// The operator console: state pushed over the WebSocket, commands and dispositions over HTTP.
"use strict";
(function () {
  const root = document.getElementById("op");
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const form = $("disp");
  const OUTBOX = "dialer.outbox." + root.dataset.user;
  let agent = { state: "offline" };
  let since = null;
  let savedDuring = "";  // the call whose outcome was stored while it was still up
  let messageFor = "";  // the call the message under 保存 is about (cleared when another's record comes)
  let savedFor = "";  // the call whose "saved" the message under 保存 says
  let refusedWith = "";  // the error a button was refused with, shown as the notice until the state moves
  let lastNotice = "";  // the notice last shown (the campaign list is read again when one appears)
  let leaving = false;  // ログアウト pressed while taking calls: it follows the pause

  function show(el, on) {
    if (!on && !el.hidden && el.contains(document.activeElement)) land();
    el.hidden = !on;
  }
  function disable(el, off) {
    if (off && !el.disabled && el === document.activeElement) land();
    el.disabled = off;
  }
  function setText(id, text) { $(id).textContent = text || ""; }
  // Another call's record comes: the message under 保存 was about the last one and goes, but its
  // "saved" stays as the previous call's until the next record (QA: in preview the next record
  // came at once and took the 保存しました away before it was seen).
  function messageMoves(attempt) {
    if (messageFor === "kept" || attempt === messageFor) return;
    const saved = savedFor !== "" && savedFor === messageFor;
    setText("disp-msg", saved ? t("disp.saved_previous") : "");
    messageFor = saved ? "previous" : "";
    savedFor = "";
  }

  // What has the focus goes (a button hidden or disabled by the new state, a form leaving): the focus
  // goes to the record card's heading (always there; the next record comes under it), never onto
  // another button (a second Enter must not hang up the call just placed), nor to the live state.
  function land() { $("rec-h").focus({ preventScroll: true }); }
  function renderAgent(a) {
    agent = a;
    setTimeout(leaveWhenPaused, 0);  // (a logout waiting for the pause)
    since = a.since;
    const badge = $("state");
    badge.dataset.state = a.state;
    badge.textContent = t("state." + a.state);
    setText("callphase", a.call_phase ? t("call." + a.call_phase) : "");
    if (a.call_phase && a.call_phase !== "ended" && endedText) { endedText = ""; setText("outcome", ""); }  // a new call
    if (messageFor === "previous" && a.attempt_id && ["dialing", "talking"].includes(a.state)) messageMoves(String(a.attempt_id));
    // a preview record's call placed: the ticks made while reading it are for this call (kept for a reload)
    if (a.attempt_id && identityHousehold !== null && identityAttempt === "" && ["dialing", "talking", "wrap_up"].includes(a.state)) {
      identityFor(identityHousehold, String(a.attempt_id));
    }
    if (a.attempt_id && shownAttempt === "" && !$("rec").hidden && ["dialing", "talking", "wrap_up"].includes(a.state)) {
      shownAttempt = String(a.attempt_id);  // (the preview record is this call's now)
    }
    const mode = a.campaign ? a.campaign.dial_mode : null;
    show($("dial"), a.state === "preview");
    show($("skip"), a.state === "preview");
    show($("hangup"), a.state === "dialing" || a.state === "talking");
    // (ready with a 休憩 waiting for a ringing call: 受付開始 calls the pause off)
    disable($("ready"), !(["offline", "paused"].includes(a.state) || (a.state === "ready" && a.pause_after_call)));
    disable($("campaign"), !["offline", "paused"].includes(a.state));
    disable($("pause"), ["offline", "paused"].includes(a.state));  // (QA: pressable, and said nothing)
    if (a.campaign) {
      $("campaign").value = String(a.campaign.id);
      // its mode changed by a supervisor: the list says the old one until read again (QA)
      const chosen = $("campaign").selectedOptions[0];
      if (chosen && chosen.dataset.mode && chosen.dataset.mode !== a.campaign.dial_mode) refreshCampaigns();
    }
    const notice = $("notice");
    refusedWith = "";
    notice.textContent = a.notice ? t(a.notice) : "";
    show(notice, !!a.notice);
    if (a.pause_after_call && !leaving && ["dialing", "talking", "wrap_up", "ready"].includes(a.state)) {
      // 休憩 pressed during a call (or with one ringing): it comes after the call and its outcome
      // (the page was closed during the call: the pause comes after it, not "has been taken")
      notice.textContent = a.notice === "notice.page_closed" ? t("op.pause_after_closed")
        : t("op.pause_after") + (a.notice ? " " + t(a.notice) : "");
      show(notice, true);
    }
    if (leaving) { notice.textContent = t("op.logout_after") + (a.notice ? " " + t(a.notice) : ""); show(notice, true); }
    if (a.notice === "notice.not_assigned" && lastNotice !== a.notice) refreshCampaigns();
    lastNotice = a.notice;
    if (a.state === "ready" || a.state === "offline" || a.state === "paused") {
      if (!form.attempt_id.value || form.attempt_id.value === savedDuring) { form.attempt_id.value = ""; clearRecord(); }
    }
    // Ready (or on the next call): no outcome is owed for the call this form was for, so another
    // tab (or page) recorded it. Unless this tab still has it to send, the resident goes (QA: a
    // second tab kept showing the last resident while the next one was being dialled).
    const stale = form.attempt_id.value && form.attempt_id.value !== String(a.attempt_id || "");
    if (stale && (a.state === "ready" || a.state === "dialing" || a.state === "preview")
        && !outbox().some((x) => String(x.attempt_id) === form.attempt_id.value)) {
      clearTyped(); form.attempt_id.value = ""; clearRecord();
    }
    if (mode && a.attempt_id && (a.state === "talking" || a.state === "wrap_up") && String(a.attempt_id) !== savedDuring) {
      // a preview call keeps what was typed while its record was read before dialling
      forCall(a.attempt_id, mode === "preview" && !form.attempt_id.value);
    }
  }

  // The form is for one call. Moved to another, what was typed is dropped: it was for the last
  // one (or for a call that rang out), and saved now it would go on this resident's record.
  function forCall(id, keepTyped) {
    const next = id ? String(id) : "";
    if (next !== form.attempt_id.value && !keepTyped) clearTyped();
    form.attempt_id.value = next;
  }
  function clearTyped() {  // (a draft kept for a reload is for its own call only: restoreDraft)
    form.reset();
    show(form.querySelector(".promise"), false);
    show(form.querySelector(".callback"), false);
    setText("note-count", "0");
    clearErrors();
  }
  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  }

  // The identity check (本人確認) is ticked for one resident on one call: never carried to the next
  // household's record, nor to another call of the same household (QA: ticks stayed on).
  // They survive a reload of the page during that call (this tab only, as the draft: QA).
  let identityHousehold = null;
  let identityAttempt = "";
  const TICKS = "dialer.identity." + root.dataset.user;
  const ticks = () => [...document.querySelectorAll(".identity input")];
  function identityFor(household, attempt) {
    const fresh = household !== identityHousehold || (attempt !== "" && identityAttempt !== "" && attempt !== identityAttempt);
    if (fresh) for (const box of ticks()) box.checked = false;
    identityHousehold = household;
    if (attempt !== "" || fresh) identityAttempt = attempt;
    if (household === null) return;
    let kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(TICKS) || "null"); } catch (e) { kept = null; }
    if (fresh && kept && kept.household === household && kept.attempt === identityAttempt) {
      ticks().forEach((box, i) => { box.checked = !!kept.ticked[i]; });
    } else if (fresh && kept) {
      sessionStorage.removeItem(TICKS);  // another resident's, or a call's that is over
    }
    if (!fresh) keepTicks();  // (ticked before dialling: now for the call placed)
  }
  function keepTicks() {
    if (identityHousehold === null) return;
    sessionStorage.setItem(TICKS, JSON.stringify({
      household: identityHousehold, attempt: identityAttempt, ticked: ticks().map((box) => box.checked),
    }));
  }
  for (const box of ticks()) box.addEventListener("change", keepTicks);

  function clearRecord() {
    shownTotal = null;
    identityFor(null, "");
    show($("rec"), false); show($("rec-none"), true); show($("caller"), false); setText("outcome", "");
    show($("identify"), false);
    inbound(false);
  }

  // No campaign calls back after an incoming call: its call-back codes are not offered.
  function inbound(on) {
    for (const el of form.querySelectorAll("input[data-callback='1']")) el.closest("label").hidden = on;
  }

  // A resident calling in: who it may be (one household matched: its record follows; none or
  // several: the operator asks for the 宛名番号 or the name and address).
  function renderCaller(msg) {
    const who = t("caller." + msg.match) + (msg.number ? (english ? " " : "　") + msg.number : "");
    setText("caller", t("caller.heading") + ": " + who);
    show($("caller"), true);
    show($("rec-none"), msg.match !== "known" && msg.match !== "identified");
    // none or several matched: the 宛名番号 or 世帯番号 the caller gives finds the household; after
    // a look-up the form stays, so that a wrong household can be looked up again before saving
    const looked = msg.match === "identified";
    show($("identify"), msg.match === "unknown" || msg.match === "several" || looked);
    $("identify").dataset.attempt = msg.attempt_id;
    if (!looked) setText("identify-msg", "");  // (after a look-up it says what was found)
    forCall(msg.attempt_id, false);
    inbound(true);
    setText("outcome", "");
    messageMoves(String(msg.attempt_id || ""));
    restoreDraft();
  }

  // In English, dates and amounts as English readers write them (the server's labels are 和暦 and 円).
  const english = document.documentElement.lang === "en";
  const yenEn = new Intl.NumberFormat("en", { style: "currency", currency: "JPY" });
  const money = (n, label) => (english ? yenEn.format(n) : label);
  const day = (iso, label) => (english ? iso : label);

  let shownTotal = null;  // the record's 未納額 on screen: a promise far above it is asked about
  let shownHousehold = null;
  let shownAttempt = "";  // the call the record on the screen is for ("": a preview record before 発信)
  function renderRecord(msg) {
    const r = msg.record;
    shownTotal = r.total_unpaid_yen;
    // Another household's record before any call of its (preview): what was typed was for the last
    // one, whose call rang out, and it would be kept for this one's call (QA).
    if (!msg.attempt_id && shownHousehold !== null && r.household_id !== shownHousehold) clearTyped();
    shownHousehold = r.household_id;
    shownAttempt = String(msg.attempt_id || "");
    identityFor(r.household_id, String(msg.attempt_id || ""));
    setText("r-name", r.name_kanji);
    setText("r-script", r.script || "");  // (text, never HTML: it holds the resident's name)
    show($("script-box"), !!r.script);
    setText("r-kana", r.name_kana);
    setText("r-birth", !r.birth_date ? "" : english ? r.birth_date : r.display.birth + " (" + r.birth_date + ")");
    setText("r-address", (r.postal_code ? "〒" + r.postal_code + " " : "") + r.address);
    setText("r-phone", r.display.phone + (r.phone_kind ? " (" + t("phone." + r.phone_kind) + ")" : ""));
    setText("r-hno", r.household_no);
    setText("r-last", r.last_contact ? day(r.last_contact, r.display.last_contact) : "—");
    setText("r-total", money(r.total_unpaid_yen, r.display.total));
    const body = $("r-debts");
    body.replaceChildren();
    for (const d of r.debts) {
      const tr = document.createElement("tr");
      const amount = money(d.unpaid_yen, d.unpaid_label);
      const unpaid = d.time_barred ? amount + (english ? " " : "") + t("rec.time_barred") : amount;  // （…） in Japanese
      const year = english ? "FY" + d.fiscal_year : d.fiscal_year_label;
      for (const [text, cls] of [[t("debt." + d.debt_type), ""], [year, ""],
                                 [unpaid, "num"], [day(d.earliest_due, d.earliest_due_label), ""]]) {
        const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td);
      }
      if (d.time_barred) { tr.className = "barred"; tr.dataset.testid = "debt-barred"; }
      body.appendChild(tr);
    }
    show($("rec"), true); show($("rec-none"), false);
    if (msg.reason !== "inbound") show($("caller"), false);
    if (msg.attempt_id) forCall(msg.attempt_id, false);
    previousCall(String(msg.attempt_id || ""));
    messageMoves(String(msg.attempt_id || ""));
    restoreDraft();
  }

  // What became of the last call (応答なし, 話し中…) stays in sight when the next record comes,
  // marked as the previous call's, until the next call starts.
  let endedText = "";
  let endedFor = "";  // the call endedText is about
  function previousCall(attemptId) {
    if (attemptId && attemptId === endedFor) return;  // its own record again (a reload, after an outage)
    setText("outcome", endedText ? t("op.previous_call") + endedText : "");
  }

  function onMessage(msg) {
    if (msg.type === "pbx") { show($("pbx-down"), !msg.up); return; }
    if (msg.type === "database") { show($("db-down"), !msg.up); if (msg.up) flush(); return; }
    if (msg.type === "agent") renderAgent(msg);
    else if (msg.type === "record") renderRecord(msg);
    else if (msg.type === "caller") renderCaller(msg);
    else if (msg.type === "call_ended") {
      let text = t("outcome." + msg.outcome);
      if (msg.hangup_by) text += t("paren.open") + t("hangup." + msg.hangup_by) + t("paren.close");
      setText("outcome", text);
      endedText = text; endedFor = String(msg.attempt_id);
      forCall(msg.needs_disposition ? msg.attempt_id : "", false);
    }
  }

  async function command(name, body) {
    const res = await postJSON("/api/agent/" + name, body, csrf);
    // 切断 for a call that has ended meanwhile (pressed twice, or the resident hung up first): what
    // was wanted has happened; nothing to say (QA: a false error stayed through wrap-up)
    if (name === "hangup" && body && res.data.error === "error.no_call") return;
    if (!res.ok) { const n = $("notice"); n.textContent = t(res.data.error || "error.generic"); show(n, true); refusedWith = res.data.error; }
    if (!res.ok && res.data.error === "error.not_assigned") refreshCampaigns();
    if (!res.ok && res.data.error === "error.too_many_skips") {  // the hour's skips are used: not pressable (QA)
      disable($("skip"), true);
      setTimeout(() => { $("skip").disabled = false; }, 5 * 60 * 1000);  // tried again later: the hour moves on
    }
  }

  // The campaigns list follows a supervisor's changes (an operator taken off, a campaign started
  // or paused): read again when it is about to be used and when the page is shown again.
  async function refreshCampaigns() {
    let list;
    try {
      const res = await fetch("/api/agent/campaigns", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) return;
      list = await res.json();
    } catch (e) { return; }
    const select = $("campaign");
    const chosen = select.value;
    const label = (c) => c.name + t("paren.open") + t("mode." + c.dial_mode) + t("paren.close");
    const same = list.length === select.options.length &&
      list.every((c, i) => select.options[i].value === String(c.id) && select.options[i].textContent === label(c));
    if (same) return;  // unchanged: an open dropdown is left alone
    select.replaceChildren(...list.map((c) => {
      const o = document.createElement("option");
      o.value = String(c.id);
      o.dataset.mode = c.dial_mode;
      o.textContent = label(c);
      return o;
    }));
    if (list.some((c) => String(c.id) === chosen)) select.value = chosen;
    show($("no-campaigns"), list.length === 0);
  }
  $("campaign").addEventListener("focus", refreshCampaigns);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshCampaigns(); });

  $("identify").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = $("identify");
    const res = await postJSON("/api/inbound/identify", { attempt_id: Number(f.dataset.attempt), key: f.key.value, by: f.by.value }, csrf);
    if (res.ok && res.data.found) { f.key.value = ""; setText("identify-msg", t("identify.found")); return; }  // the record follows; a wrong one can be looked up again
    const key = res.ok ? "identify.not_found" : ((res.data.fields || {}).key || res.data.error || "error.generic");
    setText("identify-msg", t(key));
  });

  $("ready").addEventListener("click", () => command("ready", { campaign_id: Number($("campaign").value) }));
  $("pause").addEventListener("click", () => command("pause"));
  $("dial").addEventListener("click", () => command("dial"));
  $("skip").addEventListener("click", () => command("skip"));
  // names its call: a press for one that has just ended (a machine, the resident hung up) must not
  // cut off the next call the dialler has placed meanwhile
  $("hangup").addEventListener("click", () => command("hangup", agent && agent.attempt_id ? { attempt_id: agent.attempt_id } : undefined));

  // Disposition form: the promise and call-back fields appear with the codes that need them.
  form.addEventListener("change", () => {
    const chosen = form.querySelector("input[name=code]:checked");
    show(form.querySelector(".promise"), !!chosen && chosen.dataset.promise === "1");
    show(form.querySelector(".callback"), !!chosen && chosen.dataset.callback === "1");
  });
  form.note.addEventListener("input", () => setText("note-count", String(form.note.value.length)));

  // What is being typed survives a reload (this tab only: sessionStorage), for the same call.
  const DRAFT = "dialer.draft." + root.dataset.user;
  const DRAFTED = ["code", "note", "promise_date", "promise_amount", "callback_at"];
  function keepDraft() {
    if (!form.attempt_id.value) return;
    const data = Object.fromEntries(new FormData(form).entries());
    const draft = { attempt_id: form.attempt_id.value };
    for (const k of DRAFTED) if (data[k]) draft[k] = data[k];
    sessionStorage.setItem(DRAFT, JSON.stringify(draft));
  }
  function restoreDraft() {
    let draft = null;
    try { draft = JSON.parse(sessionStorage.getItem(DRAFT) || "null"); } catch (e) { draft = null; }
    if (!draft || draft.attempt_id !== form.attempt_id.value) return;
    for (const k of DRAFTED) {
      if (!(k in draft)) continue;
      if (k === "code") { const r = form.querySelector('input[name=code][value="' + CSS.escape(draft.code) + '"]'); if (r) r.checked = true; }
      else if (!form[k].value) form[k].value = draft[k];
    }
    form.dispatchEvent(new Event("change"));
    setText("note-count", String(form.note.value.length));
  }
  form.addEventListener("input", keepDraft);
  form.addEventListener("change", keepDraft);

  // Nothing lost: a disposition waits in localStorage until the server has stored it; the
  // server stores each token once, so resending after any failure never makes a duplicate.
  function outbox() { try { return JSON.parse(localStorage.getItem(OUTBOX) || "[]"); } catch (e) { return []; } }
  function saveOutbox(items) { localStorage.setItem(OUTBOX, JSON.stringify(items)); }
  function drop(token) { saveOutbox(outbox().filter((x) => x.token !== token)); }

  function resetForm(keepRecord) {
    sessionStorage.removeItem(DRAFT);
    clearTyped();
    form.attempt_id.value = "";
    if (!keepRecord) clearRecord();
  }

  // Send one stored disposition. True when it needs no more sending (stored, or refused).
  let needLogin = false;
  let sending = "";  // the token on its way now (the others in the outbox may still be replaced)
  async function deliver(item) {
    let res;
    // No answer within a few seconds (the database hanging, not yet known to be down): say that
    // the outcome is kept and being sent, rather than nothing at all.
    messageFor = String(item.attempt_id || "none");
    const slow = setTimeout(() => setText("disp-msg", t("disp.pending")), 3000);
    sending = item.token;
    try { res = await postJSON("/api/dispositions", item, csrf); } catch (e) { res = { ok: false, status: 0 }; }
    finally { clearTimeout(slow); sending = ""; }
    if (!res.ok && (res.status === 0 || res.status >= 500)) { setText("disp-msg", t("disp.pending")); return false; }
    if (res.status === 401 || (res.status === 403 && res.data.error === "error.csrf")) {
      // The session ended or this page is stale: keep it; it is sent once the operator logs in again.
      needLogin = true;
      setText("disp-msg", t("disp.login_again"));
      return false;
    }
    drop(item.token);
    const current = String(item.attempt_id) === form.attempt_id.value;
    if (res.ok) {
      // Saved during the call: the resident is still on the line, so their record stays until it ends.
      const during = agent.state === "dialing" || agent.state === "talking";
      // the next resident's record may be on the screen already (it came before this answer): it stays
      const other = !$("rec").hidden && shownAttempt !== String(item.attempt_id);
      if (current && during) savedDuring = String(item.attempt_id);
      if (current) { resetForm(during || other); }
      // (the next record may already be on the screen: the outcome saved is the previous call's)
      setText("disp-msg", t(other ? "disp.saved_previous" : "disp.saved"));
      if (other) messageFor = "previous";  // (it goes when the next call starts)
      savedFor = String(item.attempt_id);
      if (refusedWith === "error.outcome_owed") { show($("notice"), false); refusedWith = ""; }  // (QA: it stayed)
      return true;
    }
    const unplaced = [];  // errors with no field of their own on the form (the call itself, say)
    let marked = null;  // the first field marked now (an earlier call's refusal marks nothing here)
    for (const [field, key] of Object.entries(res.data.fields || {})) {
      const slot = current ? form.querySelector('.field-error[data-for="' + field + '"]') : null;
      const detail = (res.data.details || {})[field];  // e.g. the hours a call-back may be given that day
      const text = t(key) + (detail ? " (" + detail + ")" : "");
      if (slot) slot.textContent = text; else unplaced.push(text);
      const input = slot ? (field === "code" ? form.querySelector("input[name=code]") : form.elements[field]) : null;
      if (input && input.setAttribute) {
        if (field === "code") form.querySelectorAll("input[name=code]").forEach((r) => r.setAttribute("aria-invalid", "true"));
        else input.setAttribute("aria-invalid", "true");
        marked = marked || input;
      }
    }
    // the first field to correct has the focus (its message is read with it: aria-describedby)
    if (marked) marked.focus();
    // A correction saved while the first was already on its way, which got stored: said as such
    // (the correction is not lost without a word: it goes to 経過記録 by staff)
    const late = item.corrects && res.data.error === "error.already_recorded";
    setText("disp-msg", [t(late ? "disp.correction_late" : res.data.error || "error.generic"), ...unplaced].join(" "));
    if (!current || late) messageFor = "kept";  // an earlier call's outcome refused: said until the next save
    return true;
  }

  // As the server reads it (campaigns/dispositions.parse_amount): １２，０００ / 12,000円 / ￥12000.
  function yenTyped(text) {
    const digits = text.normalize("NFKC").trim().replace(/円$/, "").replaceAll(",", "").trim().replace(/^[¥\\]/, "").trim();
    return /^[0-9]{1,12}$/.test(digits) ? Number(digits) : null;
  }

  let flushing = false;
  async function flush() {
    if (flushing || needLogin) return;
    flushing = true;
    try {
      // Re-read each time: a disposition saved while this runs is sent by this same pass.
      for (let items = outbox(); items.length; items = outbox()) { if (!(await deliver(items[0]))) break; }
    } finally { flushing = false; }
  }

  // One press, one outcome: the button waits for the answer (a double click sent it twice, and the
  // second said "already saved" over the first's "saved").
  const saveButton = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (saveButton.disabled) return;
    clearErrors();
    if (!form.attempt_id.value && savedDuring && agent.attempt_id && String(agent.attempt_id) === savedDuring) {
      setText("disp-msg", t("disp.saved_already"));  // this call's outcome is stored: add to it in 経過記録
      return;
    }
    if (!form.attempt_id.value && agent.state === "preview") {
      setText("disp-msg", t("disp.dial_first"));  // a preview record before 発信: no call to save it on yet
      messageFor = "none";  // (it goes with this record)
      return;
    }
    const data = Object.fromEntries(new FormData(form).entries());
    // A typing slip (one zero too many) in a promise is asked about, not refused: 延滞金 and debts
    // the record does not show may make a real promise larger than the 未納額 shown.
    const amount = yenTyped(String(data.promise_amount || ""));
    if (amount !== null && shownTotal !== null && amount > shownTotal && form.promise_amount.offsetParent !== null
        && !window.confirm(t("disp.amount_over").replace("{amount}", yenEn.format(amount)).replace("{total}", yenEn.format(shownTotal)))) {
      form.promise_amount.focus();
      return;
    }
    data.token = crypto.randomUUID();
    data.saved_at = new Date().toISOString();  // time-relative checks use the moment of saving
    // Saved again while the first is still waiting (the database away): the later one is what the
    // operator means, so it takes the first's place (both were sent, and the second refused unseen).
    const queued = outbox(), same = (x) => String(x.attempt_id) === String(data.attempt_id);
    if (queued.some(same)) data.corrects = true;  // (the first may be on its way, and stored)
    saveOutbox([...queued.filter((x) => x.token === sending || !same(x)), data]);
    saveButton.disabled = true;
    try { await flush(); } finally {
      saveButton.disabled = false;
      if (document.activeElement === document.body) saveButton.focus();  // (disabled while sending, it lost it)
    }
  });
  setInterval(() => { if (outbox().length) flush(); }, 5000);

  // Unsent notes must not stay on a shared terminal after logout: warn, then clear.
  // Logging out while taking calls: a pause first (a predictive call ringing for this operator
  // waits for them, then the call and its outcome), then the logout itself, once paused. Logging
  // out at once would leave a person who answers such a call with nobody (an abandoned call).
  const logoutForm = document.getElementById("logout-form");
  function leaveNow() {  // the logout itself (the submit handler lets it through)
    leaving = false;
    logoutForm.dataset.now = "1";
    logoutForm.requestSubmit();
  }
  function leaveWhenPaused() {
    if (!leaving || !["paused", "offline"].includes(agent.state)) return;
    if (outbox().length) { setTimeout(leaveWhenPaused, 500); return; }  // the outcome is still on its way
    leaveNow();
  }
  if (logoutForm) {
    logoutForm.addEventListener("submit", (ev) => {
      const taking = ["ready", "preview", "dialing", "talking", "wrap_up"].includes(agent.state);
      if (taking && !logoutForm.dataset.now) {
        ev.preventDefault();
        if (leaving) return;  // pressed again: it is on its way
        leaving = true;
        const n = $("notice"); n.textContent = t("op.logout_after"); show(n, true);
        // now, or after the call and its outcome; the logout follows the pause (at once if the
        // pause cannot be asked for: the session has ended, the server is away)
        postJSON("/api/agent/pause", {}, csrf).then(
          (res) => { if (!res.ok && leaving) leaveNow(); },
          () => { if (leaving) leaveNow(); },
        );
        setTimeout(() => { if (leaving) leaveNow(); }, 600000);  // 10 minutes at most
        return;
      }
      if (outbox().length && !window.confirm(t("disp.unsent_logout"))) {
        ev.preventDefault();
        delete logoutForm.dataset.now;
        return;
      }
      localStorage.removeItem(OUTBOX);
      sessionStorage.removeItem(DRAFT);
      sessionStorage.removeItem(TICKS);
    });
  }

  // A field reached with Tab (or the caret moving in 会話記録) scrolls clear of the sticky bars, the
  // state bar at the top and 保存 at the bottom, whatever their height on this screen (QA: 会話記録
  // was typed in under the 保存 bar on a laptop).
  const clearOfBars = new ResizeObserver(() => {
    const page = document.documentElement.style;
    page.scrollPaddingTop = root.querySelector(".bar").offsetHeight + 8 + "px";
    page.scrollPaddingBottom = form.querySelector(".savebar").offsetHeight + 8 + "px";
  });
  clearOfBars.observe(root.querySelector(".bar"));
  clearOfBars.observe(form.querySelector(".savebar"));
  form.addEventListener("focusin", (ev) => {  // (a focused box partly in sight is not scrolled by itself)
    const el = ev.target;
    if (el.closest(".savebar")) return;
    const box = el.getBoundingClientRect();
    const top = root.querySelector(".bar").getBoundingClientRect().bottom;
    if (box.top < top || box.bottom > form.querySelector(".savebar").getBoundingClientRect().top) {
      el.scrollIntoView({ block: "nearest" });
    }
  });

  setInterval(() => { if (since) setText("since", elapsed(since)); }, 1000);
  liveSocket(onMessage, (up) => {
    setText("ws", up ? t("op.connected") : t("op.disconnected"));
    if (up) flush();
  });
})();
