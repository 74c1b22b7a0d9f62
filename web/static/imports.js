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

  function progress(body) {
    let text = i18n["imp.phase." + body.phase] || t("imp.running");
    if (body.phase === "reading" && body.percent != null) text += " " + body.percent + "%";
    if (body.phase === "merging" && i18n["imp.step." + body.step]) text += " (" + t("imp.step." + body.step) + ")";
    if (body.read != null) text += " — " + t("imp.read_so_far").replace("{n}", number.format(body.read));
    out.textContent = text;
  }

  function finished(body) {
    out.replaceChildren();
    const p = document.createElement("pre");
    p.textContent = body.summary;
    out.append(p);
    if (body.rejected || body.warned) {
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
        res = await fetch(url, { headers: { Accept: "application/json" } });
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
