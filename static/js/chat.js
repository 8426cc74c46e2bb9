// Streams a live answer: server-sent events append tokens as plain text (textContent:
// model output is never HTML here); when the answer ends, the server's rendered message
// (sanitised Markdown, citations, trace) replaces the live one.
// The row is the truth: each (re)connection starts with a "snapshot" of the saved answer,
// which REPLACES what is shown (a reconnect after a blip never appends tokens twice); the
// server sends another whenever what it sent drifted from the row, and "done" when the row
// has ended, even if the job's own events were lost.
(function () {
  "use strict";
  const WAITING = { pending: "Waiting for a worker", streaming: "Answering…" };
  function follow(el) {
    const answer = el.querySelector(".answer");
    const status = el.querySelector(".live-status");
    // A passing state ("Reconnecting…") gives way to the next snapshot's; the job's own
    // progress line (rendered by the server) stays until tokens come.
    const say = (text, passing) => {
      if (!status) return;
      status.textContent = text;
      status.dataset.passing = passing ? "1" : "";
    };
    const source = new EventSource(el.dataset.stream);
    source.addEventListener("snapshot", (e) => {
      const d = JSON.parse(e.data);
      answer.textContent = d.text;
      el.dataset.status = d.status;
      if (status && status.dataset.passing && WAITING[d.status]) say(WAITING[d.status]);
    });
    source.addEventListener("token", (e) => {
      answer.textContent += JSON.parse(e.data).text;
      say(WAITING.streaming);
    });
    source.addEventListener("retry", (e) => {
      answer.textContent = "";
      say("The model failed (" + JSON.parse(e.data).error + "); trying again…", true);
    });
    source.addEventListener("done", (e) => {
      source.close();
      if (JSON.parse(e.data).status === "deleted") { el.remove(); return; }
      rendered(el);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a 429 when too many streams are open: EventSource cannot read the
        // status, it just stops for good). Say so and follow the saved message instead.
        say("Too many live streams open: close other tabs or reload. The answer appears here when it is done.");
        poll(el, answer);
        return;
      }
      // The connection dropped (server restart, network): the browser retries by itself;
      // the snapshot on reconnect restores the text.
      say("Reconnecting…", true);
    };
  }
  // The ended message, rendered by the server; fetched again until it comes.
  function rendered(el, wait) {
    fetch(el.dataset.render, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => { el.outerHTML = html; })
      .catch((why) => {
        if (why === 404) { el.remove(); return; }
        setTimeout(() => rendered(el, Math.min((wait || 1000) * 2, 30000)), wait || 1000);
      });
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
