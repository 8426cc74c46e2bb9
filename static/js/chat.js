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
      // The connection dropped (server restart, network): the browser retries by itself;
      // the snapshot on reconnect restores the text.
      if (status) status.textContent = "Reconnecting…";
    };
  }
  document.querySelectorAll("[data-stream]").forEach(follow);
})();
