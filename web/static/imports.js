// The import form: the file goes as the request body (streamed by the server to disk), the CSRF
// token in a header. The server answers 202 at once and imports in the background; the page asks
// how far it has got every second and shows the result and the error report link at the end.
"use strict";
(function () {
  const form = document.getElementById("import-form");
  const out = document.getElementById("import-result");
  const i18n = JSON.parse(document.getElementById("i18n").textContent);
  const t = (k) => i18n[k] || k;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const number = new Intl.NumberFormat(document.documentElement.lang || "ja");

  // Only the layouts made for the chosen department's files (a layout naming none fits any); until
  // one is chosen, or when the one chosen does not fit, the department's first arrears layout (the
  // file most often loaded; the list is in name order, where 経過記録's contacts-sample comes first).
  let chosen = false;
  form.mapping.addEventListener("change", () => { chosen = true; });
  function layoutsFor() {
    const department = form.department.value;
    let first = null;
    for (const o of form.mapping.options) {
      const fits = !o.dataset.departments || o.dataset.departments.split(" ").includes(department);
      o.hidden = o.disabled = !fits;
      if (fits && (first === null || (first.dataset.kind !== "households" && o.dataset.kind === "households"))) first = o;
    }
    if ((!chosen || form.mapping.selectedOptions[0]?.disabled) && first) form.mapping.value = first.value;
    datedOrNot();
  }
  // A payments file has no 抽出日 of its own (its payments are dated): the field is not offered.
  function datedOrNot() {
    const dated = form.mapping.selectedOptions[0]?.dataset.kind !== "payments";
    form.elements.as_of.closest("label").hidden = !dated;
    if (!dated) form.elements.as_of.value = "";
  }
  form.mapping.addEventListener("change", datedOrNot);
  form.department.addEventListener("change", layoutsFor);
  layoutsFor();

  function progress(body) {
    let text = i18n["imp.phase." + body.phase] || t("imp.running");
    if (body.phase === "reading" && body.percent != null) text += " " + body.percent + "%";
    if (body.phase === "merging" && i18n["imp.step." + body.step]) text += " (" + t("imp.step." + body.step) + ")";
    if (body.read != null) text += " — " + t("imp.read_so_far").replace("{n}", number.format(body.read));
    out.textContent = text;
  }

  // The result in the page's language: how many rows, and what each table gained (the English
  // text summary stays in the JSON for scripts).
  function finished(body) {
    out.replaceChildren();
    const dl = document.createElement("dl");
    dl.className = "grid";
    const add = (label, value) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dl.append(dt, dd);
    };
    add(t("imp.status"), t("imp.status." + body.status));
    add(t("imp.read"), number.format(body.read));
    add(t("imp.stored"), number.format(body.stored));
    add(t("imp.rejected"), number.format(body.rejected));
    add(t("imp.warned"), number.format(body.warned));
    const counts = body.counts || {};
    for (const table of ["households", "persons", "phones", "debts", "payments", "plans", "plan_dues", "contacts"]) {
      const c = counts[table];
      if (c && typeof c === "object") {
        let text = t("imp.new") + " " + number.format(c.inserted || 0) + t("sep.list") + t("imp.changed") + " " + number.format(c.updated || 0);
        if (c.removed) text += t("sep.list") + t("imp.removed") + " " + number.format(c.removed);
        add(t("imp.table." + table), text);
      }
    }
    if (counts.duplicates_rejected) add(t("imp.duplicates"), number.format(counts.duplicates_rejected));
    if (counts.households_paid_off) add(t("imp.paid_off"), number.format(counts.households_paid_off));
    if (counts.payments_in_export) add(t("imp.in_export"), number.format(counts.payments_in_export));
    if (counts.payments_over_assessed) add(t("imp.over_assessed"), number.format(counts.payments_over_assessed));
    if (counts.targets_excluded) add(t(body.kind === "plans" ? "imp.plan_kept" : "imp.head_gone"), number.format(counts.targets_excluded));
    if (counts.plans_older) add(t("imp.plans_older"), number.format(counts.plans_older));
    if (counts.contacts_older) add(t("imp.contacts_older"), number.format(counts.contacts_older));
    if (counts.plan_dues_not_removed) add(t("imp.plan_dues_not_removed"), number.format(counts.plan_dues_not_removed));
    if (counts.older_than) add(t("imp.older_than"), counts.older_than);
    if (counts.phones_set_aside) add(t("imp.phones_set_aside"), number.format(counts.phones_set_aside));
    if (counts.debts_closed) add(t("imp.debts_closed"), number.format(counts.debts_closed));
    if (counts.debts_not_closed) add(t("imp.debts_not_closed"), number.format(counts.debts_not_closed));
    if (counts.debts_not_closed_too_many) add(t("imp.debts_too_many"), counts.debts_not_closed_too_many);
    out.append(dl);
    if (body.message) {
      const p = document.createElement("p");
      p.textContent = body.message.startsWith("interrupted") ? t("imp.interrupted") : body.message;
      out.append(p);
    }
    if ((body.rejected || body.warned) && body.report) {
      const a = document.createElement("a");
      a.href = body.report;
      a.textContent = t("imp.report");
      out.append(a);
    }
  }

  async function follow(url) {
    let misses = 0;
    for (;;) {
      await sleep(1000);
      let res;
      try {
        res = await fetch(url, { headers: { Accept: "application/json", "X-Dialer-Poll": "1" } });
      } catch (e) {
        if (++misses > 30) throw e; // the server is away for half a minute: stop asking
        continue;
      }
      if (!res.ok) throw new Error(String(res.status));
      misses = 0;
      const body = await res.json();
      if (body.status === "running") progress(body);
      else return body;
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) return;
    const q = new URLSearchParams({
      department: form.elements.department.value,
      mapping: form.elements.mapping.value,
      name: file.name,
    });
    if (form.elements.as_of.value) q.set("as_of", form.elements.as_of.value);
    out.textContent = t("imp.uploading");
    form.querySelector("button").disabled = true;
    try {
      const res = await fetch("/api/admin/imports?" + q, {
        method: "POST",
        headers: { "X-CSRF-Token": form.dataset.csrf, "Content-Type": "text/csv" },
        body: file,
      });
      const body = await res.json();
      if (!res.ok) {
        out.textContent = t(body.error) + (body.detail ? " — " + body.detail : "");
        return;
      }
      out.textContent = t("imp.running");
      finished(await follow(body.url));
    } catch (e) {
      out.textContent = t("imp.failed");
    } finally {
      form.querySelector("button").disabled = false;
    }
  });
})();
