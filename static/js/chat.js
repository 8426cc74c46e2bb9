// Streams a live answer: server-sent events append tokens as plain text (textContent:
// model output is never HTML here); when the answer ends, the server's rendered message
// (sanitised Markdown, citations, trace) replaces the live one.
(function () {
  "use strict";
  function follow(el) {
    const answer = el.querySelector(".answer");
    const status = el.querySelector(".live-status");
    const source = new EventSource(el.dataset.stream);
    source.addEventListener("snapshot", (e) => { answer.textContent = JSON.parse(e.data).text; });
    source.addEventListener("token", (e) => {
      answer.textContent += JSON.parse(e.data).text;
      if (status) status.textContent = "Answering…";
    });
    source.addEventListener("retry", (e) => {
      answer.textContent = "";
      if (status) status.textContent = "The model failed (" + JSON.parse(e.data).error + "); trying again…";
    });
    source.addEventListener("done", () => {
      source.close();
      fetch(el.dataset.render, { credentials: "same-origin" })
        .then((r) => r.text())
        .then((html) => { el.outerHTML = html; });
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a 429 when too many streams are open: EventSource cannot read the
        // status, it just stops for good). Say so and follow the saved message instead.
        if (status) status.textContent = "Too many live streams open: close other tabs or reload. The answer appears here when it is done.";
        poll(el, answer);
        return;
      }
      // The connection dropped (server restart, network): the browser retries by itself;
      // the snapshot on reconnect restores the text.
      if (status) status.textContent = "Reconnecting…";
    };
  }
  // Without a stream: fetch the message every few seconds; show its saved draft while it
  // runs, and the rendered message once it has ended.
  function poll(el, answer) {
    const every = 5000;
    const tick = () => {
      fetch(el.dataset.render, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => {
          const t = document.createElement("template");
          t.innerHTML = html.trim();
          const fresh = t.content.firstElementChild;
          if (fresh && !fresh.dataset.stream) { el.replaceWith(fresh); return; }
          const draft = fresh && fresh.querySelector(".answer");
          if (draft) answer.textContent = draft.textContent;
          setTimeout(tick, every);
        })
        .catch(() => setTimeout(tick, every * 2));
    };
    setTimeout(tick, every);
  }
  document.querySelectorAll("[data-stream]").forEach(follow);
})();
