// The import form: the file goes as the request body (streamed by the server to disk), the CSRF
// token in a header; the result and the error report link are shown when the import has finished.
"use strict";
(function () {
  const form = document.getElementById("import-form");
  const out = document.getElementById("import-result");
  const i18n = JSON.parse(document.getElementById("i18n").textContent);
  const t = (k) => i18n[k] || k;
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
    out.textContent = t("imp.running");
    form.querySelector("button").disabled = true;
    try {
      const res = await fetch("/api/admin/imports?" + q, {
        method: "POST",
        headers: { "X-CSRF-Token": form.dataset.csrf, "Content-Type": "text/csv" },
        body: file,
      });
      const body = await res.json();
      out.replaceChildren();
      if (!res.ok) {
        out.textContent = t(body.error) + (body.detail ? " — " + body.detail : "");
        return;
      }
      const p = document.createElement("pre");
      p.textContent = body.summary;
      out.append(p);
      if (body.rejected || body.warned) {
        const a = document.createElement("a");
        a.href = body.report;
        a.textContent = t("imp.report");
        out.append(a);
      }
    } catch (e) {
      out.textContent = t("imp.failed");
    } finally {
      form.querySelector("button").disabled = false;
    }
  });
})();
