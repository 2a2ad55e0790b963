// airlock chat page. Talks to the same origin only: /v1/chat/completions
// (streamed, OpenAI chunk format) for chat and /api/infer for emotion
// classification. The conversation lives in sessionStorage (this tab only);
// the server keeps none. Replies are rendered as Markdown and sanitized
// before they touch the DOM.
import { marked } from "./vendor/marked.esm.js";
import DOMPurify from "./vendor/purify.es.mjs";

const STORE_KEY = "airlock.chat.v1";
const PREFS_KEY = "airlock.prefs.v1";

const TEXT = {
  en: {
    title: "airlock chat", modeLegend: "Mode", modeChat: "Chat", modeEmotion: "Emotion",
    newChat: "New chat", langButton: "中文", langLabel: "切换到中文",
    empty: "Send a message to start. The conversation stays in this browser tab.",
    inputLabel: "Message", send: "Send", stop: "Stop", copy: "Copy", copied: "Copied",
    placeholderChat: "Message (Enter to send, Shift+Enter for a new line)",
    placeholderEmotion: "Text to classify as positive or negative (Enter to send)",
    you: "You", assistant: "Assistant", emotion: "Emotion",
    positive: "positive", negative: "negative", confidence: "confidence",
    stopped: "Stopped.", timeMs: "ms",
    err401: "Not signed in or wrong credentials (401). Reload the page and sign in.",
    err429: "The server is busy (429). Try again in a few seconds.",
    err413: "The message is too long for the server.",
    errGone: "Cannot reach the server. Is airlock serve still running?",
    errServer: "The server reported an error",
    errStream: "The reply was cut off",
  },
  zh: {
    title: "airlock 对话", modeLegend: "模式", modeChat: "对话", modeEmotion: "情感",
    newChat: "新对话", langButton: "English", langLabel: "Switch to English",
    empty: "发送一条消息开始。对话只保存在当前浏览器标签页中。",
    inputLabel: "消息", send: "发送", stop: "停止", copy: "复制", copied: "已复制",
    placeholderChat: "输入消息（Enter 发送，Shift+Enter 换行）",
    placeholderEmotion: "输入要判断情感倾向的文本（Enter 发送）",
    you: "你", assistant: "助手", emotion: "情感",
    positive: "正面", negative: "负面", confidence: "置信度",
    stopped: "已停止。", timeMs: "毫秒",
    err401: "未登录或用户名、密码错误（401）。请刷新页面重新登录。",
    err429: "服务器繁忙（429），请稍后重试。",
    err413: "消息太长，服务器拒绝处理。",
    errGone: "无法连接服务器。airlock serve 还在运行吗？",
    errServer: "服务器返回错误",
    errStream: "回复中断",
  },
};

const $ = (id) => document.getElementById(id);
const els = {
  messages: $("messages"), empty: $("empty"), status: $("status"), form: $("composer"),
  input: $("input"), send: $("send"), stop: $("stop"), newChat: $("new-chat"), lang: $("lang"), model: $("model"),
};

let prefs = loadJSON(localStorage, PREFS_KEY, {});
let lang = prefs.lang === "zh" || prefs.lang === "en" ? prefs.lang
  : (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
let state = loadJSON(sessionStorage, STORE_KEY, null) || { mode: "chat", messages: [] };
let busy = null; // AbortController of the request in flight

const t = (key) => TEXT[lang][key] ?? TEXT.en[key] ?? key;

function loadJSON(store, key, fallback) {
  try {
    const v = JSON.parse(store.getItem(key));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

function save() {
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
  } catch {
    // Storage full or disabled: the conversation still works in memory.
  }
}

const escapeHTML = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Raw HTML in a reply is shown as text, never parsed, and images become
// their alt text, so a reply cannot make the browser load anything.
marked.use({
  renderer: {
    html: (token) => escapeHTML(token.text),
    image: (token) => escapeHTML(token.text || ""),
  },
});

// renderMarkdown turns model output into sanitized HTML: marked's output
// (raw HTML already escaped, see above) goes through DOMPurify, which also
// drops media and form elements; the page's CSP is the last line of
// defence.
function renderMarkdown(text) {
  const html = marked.parse(text, { gfm: true, breaks: true, async: false });
  return DOMPurify.sanitize(html, {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["img", "picture", "video", "audio", "source", "track", "iframe", "object", "embed",
      "form", "input", "button", "textarea", "select", "style", "link", "meta", "base", "svg", "math"],
    FORBID_ATTR: ["style", "srcset", "background", "poster", "formaction"],
  });
}

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("rel", "noopener noreferrer");
    node.setAttribute("target", "_blank");
  }
});

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  els.lang.textContent = t("langButton");
  els.lang.setAttribute("aria-label", t("langLabel"));
  els.input.placeholder = state.mode === "emotion" ? t("placeholderEmotion") : t("placeholderChat");
  renderAll();
}

function setMode(mode) {
  state.mode = mode === "emotion" ? "emotion" : "chat";
  $("mode-" + state.mode).checked = true;
  document.body.dataset.mode = state.mode;
  els.input.placeholder = state.mode === "emotion" ? t("placeholderEmotion") : t("placeholderChat");
  save();
}

function showStatus(msg) {
  els.status.textContent = msg;
  els.status.hidden = !msg;
}

// messageView builds the DOM of one stored message.
function messageView(m, index) {
  const div = document.createElement("div");
  div.className = `msg ${m.role}${m.error ? " error" : ""}`;
  div.dataset.index = String(index);
  const who = document.createElement("div");
  who.className = "who";
  const name = document.createElement("span");
  name.textContent = m.role === "user" ? t("you") : m.kind === "emotion" ? t("emotion") : t("assistant");
  who.append(name);
  const body = document.createElement("div");
  body.className = "body";
  if (m.role === "user") {
    body.textContent = m.content;
  } else if (m.kind === "emotion" && m.label) {
    const label = document.createElement("span");
    label.className = "label";
    label.dataset.label = m.label;
    label.textContent = m.label;
    const info = document.createElement("div");
    info.className = "note";
    const english = m.label === "正面" ? t("positive") : t("negative");
    info.textContent = `${english} · ${t("confidence")} ${(m.confidence * 100).toFixed(1)}% · ${m.ms} ${t("timeMs")}`;
    body.append(label, info);
  } else if (m.error) {
    body.textContent = m.content;
  } else {
    body.innerHTML = renderMarkdown(m.content);
    if (m.stopped) {
      const note = document.createElement("div");
      note.className = "note";
      note.textContent = t("stopped");
      body.append(note);
    }
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.textContent = t("copy");
    copy.setAttribute("aria-label", `${t("copy")} (${t("assistant")})`);
    copy.addEventListener("click", () => copyText(m.content, copy));
    who.append(copy);
  }
  div.append(who, body);
  return div;
}

function renderAll() {
  els.messages.replaceChildren(...state.messages.map(messageView));
  els.empty.hidden = state.messages.length > 0;
}

function append(m) {
  state.messages.push(m);
  const view = messageView(m, state.messages.length - 1);
  els.messages.append(view);
  els.empty.hidden = true;
  scrollDown();
  return view;
}

function scrollDown() {
  const main = els.messages.parentElement;
  main.scrollTop = main.scrollHeight;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = document.createElement("textarea");
    ta.value = text;
    document.body.append(ta);
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
  button.textContent = t("copied");
  setTimeout(() => { button.textContent = t("copy"); }, 1500);
}

function setBusy(controller) {
  busy = controller;
  els.send.disabled = !!controller;
  els.stop.hidden = !controller;
  els.newChat.disabled = !!controller;
  for (const r of document.querySelectorAll("input[name=mode]")) r.disabled = !!controller;
  if (!controller) els.input.focus();
}

// describeError turns a failed response into a message for the user.
async function describeError(res) {
  let detail = "";
  try {
    const body = await res.json();
    detail = body?.error?.message || "";
  } catch {
    // not JSON
  }
  switch (res.status) {
    case 401: return t("err401");
    case 429: return t("err429") + (res.headers.get("Retry-After") ? ` (Retry-After: ${res.headers.get("Retry-After")} s)` : "");
    case 413: return t("err413") + (detail ? ` ${detail}` : "");
    default: return `${t("errServer")} (${res.status})${detail ? ": " + detail : ""}`;
  }
}

function networkError(err) {
  return err instanceof TypeError ? t("errGone") : `${t("errServer")}: ${err.message || err}`;
}

// chatHistory is what the model sees: the chat turns, without emotion
// results, errors or the reply being written.
function chatHistory() {
  return state.messages
    .filter((m) => m.kind === "chat" && !m.error && !m.pending && m.content)
    .map((m) => ({ role: m.role, content: m.content }));
}

async function sendChat(text) {
  append({ role: "user", kind: "chat", content: text });
  const messages = chatHistory();
  const reply = { role: "assistant", kind: "chat", content: "", pending: true };
  const view = append(reply);
  view.classList.add("streaming");
  view.setAttribute("aria-busy", "true"); // announce the reply once, when complete
  const body = view.querySelector(".body");
  save();
  const controller = new AbortController();
  setBusy(controller);
  let frame = 0;
  const paint = () => {
    frame = 0;
    body.innerHTML = renderMarkdown(reply.content);
    scrollDown();
  };
  try {
    const res = await fetch("v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ messages, stream: true }),
      signal: controller.signal,
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!res.ok) throw new ResponseError(await describeError(res));
    await readSSE(res.body, (chunk) => {
      if (chunk.error) throw new ResponseError(`${t("errStream")}: ${chunk.error.message || ""}`);
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        reply.content += delta;
        if (!frame) frame = requestAnimationFrame(paint);
      }
    });
  } catch (err) {
    if (controller.signal.aborted) {
      reply.stopped = true;
    } else {
      const msg = err instanceof ResponseError ? err.message : networkError(err);
      if (!reply.content) {
        reply.error = true;
        reply.content = msg;
      }
      showStatus(msg);
    }
  } finally {
    if (frame) cancelAnimationFrame(frame);
    delete reply.pending;
    save();
    view.replaceWith(messageView(reply, state.messages.indexOf(reply)));
    setBusy(null);
  }
}

class ResponseError extends Error {}

// readSSE reads a text/event-stream body and calls onData with each
// JSON "data:" payload until "data: [DONE]" or the end of the stream.
async function readSSE(stream, onData) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let done = false;
  for (;;) {
    const { value, done: eof } = await reader.read();
    if (eof) break;
    buf += value;
    let cut;
    while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
      const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;
      if (data === "[DONE]") { done = true; break; }
      try {
        onData(JSON.parse(data));
      } catch (err) {
        await reader.cancel().catch(() => {});
        throw err;
      }
    }
    if (done) break;
  }
  if (done) await reader.cancel().catch(() => {});
  else throw new ResponseError(t("errStream"));
}

async function sendEmotion(text) {
  append({ role: "user", kind: "emotion", content: text });
  save();
  const controller = new AbortController();
  setBusy(controller);
  try {
    const res = await fetch("api/infer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, mode: "emotion" }),
      signal: controller.signal,
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!res.ok) throw new ResponseError(await describeError(res));
    const out = await res.json();
    append({ role: "assistant", kind: "emotion", label: out.emotion_label, confidence: out.confidence, ms: out.inference_time_ms, content: out.emotion_label });
  } catch (err) {
    if (!controller.signal.aborted) {
      const msg = err instanceof ResponseError ? err.message : networkError(err);
      append({ role: "assistant", kind: "emotion", error: true, content: msg });
      showStatus(msg);
    }
  } finally {
    save();
    setBusy(null);
  }
}

function submit() {
  const text = els.input.value;
  if (busy || !text.trim()) return;
  els.input.value = "";
  showStatus("");
  if (state.mode === "emotion") sendEmotion(text);
  else sendChat(text);
}

els.form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
els.input.addEventListener("keydown", (e) => {
  // Enter sends; Shift+Enter adds a line; Enter that confirms an IME
  // composition (Chinese, Japanese input) must not send.
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    submit();
  }
});
els.stop.addEventListener("click", () => busy?.abort());
els.newChat.addEventListener("click", () => {
  if (busy) return;
  state.messages = [];
  save();
  showStatus("");
  renderAll();
  els.input.focus();
});
for (const r of document.querySelectorAll("input[name=mode]")) {
  r.addEventListener("change", () => { if (r.checked) setMode(r.value); els.input.focus(); });
}
els.lang.addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  prefs.lang = lang;
  try { localStorage.setItem(PREFS_KEY, JSON.stringify(prefs)); } catch { /* ignore */ }
  applyLanguage();
});
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && busy) busy.abort(); });

// Pending replies from a reload mid-stream are kept as they are.
for (const m of state.messages) delete m.pending;
setMode(state.mode);
applyLanguage();
els.input.focus();

fetch("v1/models", { credentials: "same-origin", cache: "no-store" })
  .then((r) => (r.ok ? r.json() : null))
  .then((j) => { if (j?.data?.[0]?.id) els.model.textContent = j.data[0].id; })
  .catch(() => {});
