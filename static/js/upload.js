// Library uploads: drag and drop or choose many files; each file is its own request with an
// upload progress bar, then its ingestion progress is polled until it is ready or failed.
(function () {
  "use strict";
  const form = document.getElementById("dropzone");
  if (!form) return;
  const input = document.getElementById("file-input");
  const list = document.getElementById("upload-list");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const maxBytes = Number(form.dataset.maxBytes) * 1024 * 1024;

  function row(file) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = file.name;  // textContent: a file name is never HTML
    const bar = document.createElement("div");
    bar.className = "progress";
    bar.setAttribute("role", "progressbar");
    const fill = document.createElement("span");
    fill.style.width = "0%";
    bar.appendChild(fill);
    const state = document.createElement("div");
    state.className = "state";
    state.textContent = "Waiting…";
    li.append(name, bar, state);
    list.appendChild(li);
    return {
      set(percent, text, kind) {
        fill.style.width = Math.max(0, Math.min(100, percent)) + "%";
        bar.classList.toggle("failed", kind === "error");
        bar.classList.toggle("succeeded", kind === "done");
        state.textContent = text;
        state.classList.toggle("error", kind === "error");
      },
    };
  }

  function poll(ui, statusUrl, title) {
    fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => r.json())
      .then((s) => {
        if (s.state === "ready") {
          ui.set(100, "Ready: " + title, "done");
          refreshRows();
        } else if (s.state === "failed") {
          ui.set(100, "Failed: " + s.error, "error");
          refreshRows();
        } else {
          ui.set(s.percent, "Ingesting… " + (s.message || ""));
          setTimeout(() => poll(ui, statusUrl, title), 1500);
        }
      })
      .catch(() => setTimeout(() => poll(ui, statusUrl, title), 3000));
  }

  let refreshTimer = null;
  function refreshRows() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      // Re-render only the document table; the upload list keeps its bars.
      if (window.htmx) htmx.ajax("GET", window.location.href, { target: "#doc-table", select: "#doc-table", swap: "outerHTML" });
    }, 400);
  }

  function send(file) {
    const ui = row(file);
    if (file.size > maxBytes) {
      ui.set(100, "Refused: the file is larger than " + form.dataset.maxBytes + " MB.", "error");
      return;
    }
    const data = new FormData();
    data.append("files", file, file.name);
    const into = form.querySelector("[name=collection]");  // a collection to upload into
    if (into && into.value) data.append("collection", into.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) ui.set((100 * e.loaded) / e.total, "Uploading… " + Math.round((100 * e.loaded) / e.total) + "%");
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      const result = body && body.results && body.results[0];
      // A refusal before the view ran (the body limit at the edge: 413) has a detail instead.
      if (!result && body && body.detail) { ui.set(100, "Refused: " + body.detail, "error"); return; }
      if (!result) { ui.set(100, "Upload failed (HTTP " + xhr.status + ").", "error"); return; }
      if (!result.ok) { ui.set(100, "Refused: " + result.error, "error"); return; }
      if (result.duplicate) {
        ui.set(100, "Already in the library as “" + result.title + "”.", "done");
        return;
      }
      ui.set(0, "Uploaded; waiting for ingestion…");
      poll(ui, result.status_url, result.title);
    };
    xhr.onerror = () => ui.set(100, "Network error: the upload did not reach the server.", "error");
    xhr.send(data);
  }

  function handle(files) { Array.from(files).forEach(send); }

  input.addEventListener("change", () => { handle(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => form.addEventListener(t, (e) => { e.preventDefault(); form.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => form.addEventListener(t, (e) => { e.preventDefault(); form.classList.remove("over"); }));
  form.addEventListener("drop", (e) => handle(e.dataTransfer.files));
})();
