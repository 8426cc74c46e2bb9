// Long writing: the live total of the outline, and the section being written streamed in
// as plain text (textContent: model output is never HTML here). When the job ends the page
// reloads to show the rendered (sanitised) text.
(function () {
  "use strict";
  function total() {
    const out = document.getElementById("outline-total");
    if (!out) return;
    let sum = 0;
    document.querySelectorAll("#outline .outline-words:not(.new)").forEach((el) => {
      sum += parseInt(el.value, 10) || 0;
    });
    out.textContent = sum.toLocaleString();
  }
  document.addEventListener("input", (e) => {
    if (e.target.classList && e.target.classList.contains("outline-words")) total();
  });
  const live = document.getElementById("live");
  if (!live) return;
  const text = document.getElementById("live-text");
  const label = document.getElementById("live-section");
  const source = new EventSource(live.dataset.stream);
  source.addEventListener("snapshot", (e) => {
    const d = JSON.parse(e.data);
    text.textContent = d.text || "";
    if (d.section) label.textContent = "· section " + d.section;
  });
  source.addEventListener("section", (e) => {
    text.textContent = "";
    label.textContent = "· section " + JSON.parse(e.data).section;
  });
  source.addEventListener("token", (e) => { text.textContent += JSON.parse(e.data).text; });
  source.addEventListener("done", () => { source.close(); window.location.reload(); });
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED) return; // a dropped connection: it retries
    // Refused (a 429 when too many streams are open; EventSource cannot read the status and
    // stops for good): say so, and reload once the page no longer shows a live section.
    label.textContent = "· too many live streams open: close other tabs or reload. This page updates when the writing ends.";
    const tick = () => {
      fetch(window.location.href, { credentials: "same-origin" })
        .then((r) => r.text())
        .then((html) => {
          if (html.includes('id="live"')) setTimeout(tick, 10000);
          else window.location.reload();
        })
        .catch(() => setTimeout(tick, 20000));
    };
    setTimeout(tick, 10000);
  };
})();
