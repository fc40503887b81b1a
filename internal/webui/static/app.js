// The ragops chat page. Relative URLs only: it works through kubectl
// port-forward and behind a path prefix. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ragops-token";
let model = null;
let history = []; // the conversation sent with each question

const tokenInput = $("token");
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";

function headers(extra) {
  const h = Object.assign({}, extra);
  const t = tokenInput.value.trim();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

// errorText reads both error shapes: OpenAI's {"error": {"message"}} and
// the rest of the API's {"error": "..."}.
async function errorText(resp) {
  try {
    const j = await resp.json();
    if (typeof j.error === "string") return j.error;
    if (j.error && j.error.message) return j.error.message;
  } catch (_) { /* not JSON */ }
  return resp.status + " " + resp.statusText;
}

async function loadModel() {
  const resp = await fetch("v1/models", { headers: headers() });
  if (!resp.ok) throw new Error(await errorText(resp));
  const j = await resp.json();
  model = j.data[0].id;
  $("model").textContent = "model: " + model;
}

async function loadDocuments() {
  const list = $("documents");
  const resp = await fetch("documents", { headers: headers() });
  if (!resp.ok) throw new Error(await errorText(resp));
  const j = await resp.json();
  list.replaceChildren(...j.documents.map((d) => {
    const li = document.createElement("li");
    li.textContent = d.source + " (" + d.chunks + (d.chunks === 1 ? " chunk)" : " chunks)");
    li.dataset.source = d.source;
    return li;
  }));
  if (j.documents.length === 0) {
    const li = document.createElement("li");
    li.textContent = "No documents yet.";
    list.append(li);
  }
}

function showError(where, err) {
  where.textContent = err instanceof Error ? err.message : String(err);
}

function turn(role, text) {
  const li = document.createElement("li");
  li.className = role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : "Answer";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(who, body);
  $("conversation").append(li);
  return li;
}

// linkCitations turns the [n] markers of an answer into links to its passages.
function linkCitations(el, text, count) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const n = Number(m[1]);
    if (n < 1 || n > count) continue;
    parts.push(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement("a");
    a.href = "#source-" + n;
    a.className = "cite";
    a.textContent = m[0];
    a.setAttribute("aria-label", "passage " + n);
    parts.push(a);
    last = m.index + m[0].length;
  }
  parts.push(document.createTextNode(text.slice(last)));
  el.replaceChildren(...parts);
}

function showSources(sources) {
  $("sources-empty").hidden = sources.length > 0;
  $("sources").replaceChildren(...sources.map((s) => {
    const li = document.createElement("li");
    li.id = "source-" + s.index;
    li.tabIndex = -1;
    const head = document.createElement("div");
    const name = document.createElement("strong");
    name.className = "source-name";
    name.textContent = "[" + s.index + "] " + s.source;
    head.append(name, document.createTextNode(" · chunk " + s.chunk + " · score " + s.score.toFixed(2)));
    const quote = document.createElement("blockquote");
    quote.textContent = s.text;
    li.append(head, quote);
    return li;
  }));
}

// ask streams the answer to question: Server-Sent Events of
// chat.completion.chunk objects, read with fetch and a ReadableStream.
async function ask(question) {
  if (!model) await loadModel();
  const messages = history.concat([{ role: "user", content: question }]);
  turn("user", question);
  const li = turn("assistant", "");
  const body = li.querySelector(".text");
  li.dataset.state = "streaming";
  $("conversation").setAttribute("aria-busy", "true");
  let text = "", sources = [], usage = null, chunks = 0;
  try {
    const resp = await fetch("v1/chat/completions", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } }),
    });
    if (!resp.ok) throw new Error(await errorText(resp));
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, end);
        buf = buf.slice(end + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          for (const c of j.choices || []) {
            if (c.delta && c.delta.content) {
              text += c.delta.content;
              chunks++;
              body.textContent = text;
            }
          }
          if (j.sources) sources = j.sources;
          if (j.usage) usage = j.usage;
        }
      }
    }
    history = messages.concat([{ role: "assistant", content: text }]);
    linkCitations(body, text, sources.length);
    showSources(sources);
    if (usage) {
      const u = document.createElement("span");
      u.className = "usage";
      u.textContent = (usage.total_tokens ? usage.total_tokens + " tokens · " : "") + sources.length + (sources.length === 1 ? " passage" : " passages");
      li.append(u);
    }
    li.dataset.chunks = String(chunks);
    li.dataset.state = "done";
  } catch (err) {
    li.dataset.state = "failed";
    body.textContent = "(no answer)";
    throw err;
  } finally {
    $("conversation").setAttribute("aria-busy", "false");
  }
}

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("question").value.trim();
  if (!q) return;
  const button = $("ask");
  button.disabled = true;
  $("chat-error").textContent = "";
  try {
    await ask(q);
    $("question").value = "";
  } catch (err) {
    showError($("chat-error"), err);
  } finally {
    button.disabled = false;
    $("question").focus();
  }
});

$("question").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $("ask-form").requestSubmit();
  }
});

$("new-chat").addEventListener("click", () => {
  history = [];
  $("conversation").replaceChildren();
  showSources([]);
  $("question").focus();
});

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  refresh();
});

$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const files = $("files").files;
  const status = $("upload-status");
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  status.className = "";
  status.textContent = "Uploading…";
  try {
    const resp = await fetch("documents", { method: "POST", headers: headers(), body: form });
    if (!resp.ok) throw new Error(await errorText(resp));
    const j = await resp.json();
    let msg = "Indexed " + j.documents + (j.documents === 1 ? " document" : " documents") +
      ": " + j.added + " new " + (j.added === 1 ? "chunk" : "chunks") + ", " + j.unchanged + " unchanged.";
    for (const s of j.skipped || []) msg += " Skipped " + s.file + ": " + s.reason + ".";
    status.textContent = msg;
    $("files").value = "";
    await loadDocuments();
  } catch (err) {
    status.className = "error";
    showError(status, err);
  }
});

$("refresh-docs").addEventListener("click", () => refresh());

async function refresh() {
  $("chat-error").textContent = "";
  try {
    await loadModel();
    await loadDocuments();
  } catch (err) {
    showError($("chat-error"), err);
  }
}

refresh();
