// The chat page. Answers stream from /v1/chat/completions as server-sent events; each [n] citation
// becomes a link that opens the passage it names in the side panel (its full text from
// /v1/documents/{id}). Plain browser JavaScript, embedded in the binary: no build step, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const chat = $("chat");
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("nanorag-api-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("nanorag-api-key", keyInput.value));

function headers() {
  const h = { "content-type": "application/json" };
  if (keyInput.value) h.authorization = `Bearer ${keyInput.value}`;
  return h;
}

function bubble(cls, text) {
  const d = document.createElement("div");
  d.className = `msg ${cls}`;
  if (text) d.textContent = text;
  chat.append(d);
  chat.scrollTop = chat.scrollHeight;
  return d;
}

function citeLink(src, label) {
  const a = document.createElement("a");
  a.className = "cite";
  a.href = "#passage";
  a.textContent = label;
  a.title = src.title;
  a.dataset.n = String(src.n);
  a.addEventListener("click", (e) => {
    e.preventDefault();
    openPassage(src);
  });
  return a;
}

/** The answer text with each [n] that names a shown source turned into a link to that passage. */
function withCitationLinks(text, sources) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const src = sources.find((s) => s.n === Number(m[1]));
    if (!src) continue;
    frag.append(text.slice(last, m.index), citeLink(src, m[0]));
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

function renderSources(list, sources) {
  list.replaceChildren(
    ...sources.map((s) => {
      const li = document.createElement("li");
      li.append(citeLink(s, `[${s.n}]`), ` ${s.title}`);
      return li;
    }),
  );
}

let shown = null;
async function openPassage(src) {
  shown = src;
  $("passage").hidden = false;
  $("passage").dataset.id = src.id;
  delete $("passage").dataset.loaded;
  $("passage-title").textContent = `[${src.n}] ${src.title}`;
  $("passage-id").textContent = src.id;
  $("passage-text").textContent = src.snippet;
  const res = await fetch(`/v1/documents/${encodeURIComponent(src.id)}`, { headers: headers() });
  if (res.ok && shown === src) {
    $("passage-text").textContent = (await res.json()).content;
    $("passage").dataset.loaded = "true";
  }
}
$("passage-close").addEventListener("click", () => ($("passage").hidden = true));

/** The `data:` payloads of a server-sent event stream. */
async function* events(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      for (const line of event.split("\n")) if (line.startsWith("data: ")) yield line.slice(6);
    }
  }
}

async function ask(question) {
  bubble("user", question);
  const msg = bubble("assistant pending");
  const answer = document.createElement("div");
  answer.className = "answer";
  const list = document.createElement("ol");
  list.className = "sources";
  msg.append(answer, list);
  let text = "";
  let sources = [];
  try {
    const res = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify({ messages: [{ role: "user", content: question }], stream: true }) });
    if (res.status === 401) {
      document.querySelector(".key").hidden = false;
      throw new Error("This server needs an API key: enter it above and ask again.");
    }
    if (!res.ok) throw new Error((await res.json()).error?.message || res.statusText);
    for await (const data of events(res)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.sources) renderSources(list, (sources = chunk.sources));
      const choice = chunk.choices?.[0];
      if (choice?.delta?.content) answer.textContent = text += choice.delta.content;
      if (choice?.finish_reason) {
        answer.replaceChildren(withCitationLinks(text || "(no answer)", sources));
        msg.dataset.finish = choice.finish_reason;
      }
      chat.scrollTop = chat.scrollHeight;
    }
  } catch (e) {
    msg.classList.add("error");
    answer.textContent = text ? `${text}\n\n${e.message}` : e.message;
  } finally {
    msg.classList.remove("pending");
    msg.dataset.done = "true";
  }
}

$("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = $("question").value.trim();
  if (!q) return;
  $("question").value = "";
  $("send").disabled = true;
  try {
    await ask(q);
  } finally {
    $("send").disabled = false;
    $("question").focus();
  }
});
$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("ask").requestSubmit();
  }
});

fetch("/health")
  .then((r) => r.json())
  .then((h) => ($("model").textContent = `model ${h.model}`))
  .catch(() => {});
