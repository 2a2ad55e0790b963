// Drives airlock's chat page in headless Chromium (playwright-core with
// Debian's /usr/bin/chromium). Started by browser_test.go, which runs the
// server and passes AIRLOCK_URL, AIRLOCK_USER, AIRLOCK_PASSWORD, CHROMIUM,
// ARTIFACTS and USER_DATA_DIR. Prints one JSON line per finished step and a
// final {"ok": ..., "violations": [...]} line; exits non-zero on failure.
//
// Any request from the browser to an address outside 127.0.0.0/8 or ::1 is
// aborted and reported as a violation.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env("AIRLOCK_URL");
const USER = env("AIRLOCK_USER");
const PASSWORD = env("AIRLOCK_PASSWORD");
const ARTIFACTS = env("ARTIFACTS");
mkdirSync(ARTIFACTS, { recursive: true });

const violations = [];
const chatBodies = [];

function isLoopback(url) {
  const u = new URL(url);
  if (u.protocol === "data:" || u.protocol === "blob:" || u.protocol === "about:") return true;
  const h = u.hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

function step(name, extra = {}) {
  console.log(JSON.stringify({ step: name, ...extra }));
}

const last = (page, sel) => page.locator(sel).last();

async function sendWithEnter(page, text) {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

async function waitIdle(page) {
  await page.locator("#stop").waitFor({ state: "hidden" });
  await page.waitForFunction(() => !document.querySelector(".msg.streaming"));
}

async function main() {
  // Credentials are refused without the right password before the browser
  // is involved at all.
  const anon = await fetch(BASE);
  check(anon.status === 401 && /Basic/.test(anon.headers.get("www-authenticate") || ""),
    `GET / without credentials: ${anon.status}`);

  const context = await chromium.launchPersistentContext(env("USER_DATA_DIR"), {
    executablePath: env("CHROMIUM"),
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"],
    httpCredentials: { username: USER, password: PASSWORD },
    viewport: { width: 1100, height: 900 },
    locale: "en-US",
    permissions: ["clipboard-read", "clipboard-write"],
  });
  // Generous timeouts: CI runs every package's tests at once on two cores
  // (and this server under -race).
  context.setDefaultTimeout(60000);
  context.setDefaultNavigationTimeout(90000);
  await context.route("**/*", (route) => {
    const req = route.request();
    if (!isLoopback(req.url())) {
      violations.push(req.url());
      return route.abort("blockedbyclient");
    }
    if (req.url().endsWith("/v1/chat/completions")) chatBodies.push(JSON.parse(req.postData() || "{}"));
    return route.continue();
  });
  context.on("request", (req) => {
    if (!isLoopback(req.url()) && !violations.includes(req.url())) violations.push(req.url());
  });
  const page = context.pages()[0] || (await context.newPage());
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });

  try {
    // login: the page loads with basic auth and finds the model name.
    const res = await page.goto(BASE);
    check(res.status() === 200, `page status ${res.status()}`);
    check((res.headers()["content-security-policy"] || "").startsWith("default-src 'self'"), "no strict CSP");
    await page.locator("#model").filter({ hasText: "tiny-qwen2" }).waitFor();
    step("login");

    // stream: Shift+Enter adds a line, Enter sends; tokens appear one by one.
    await page.fill("#input", "line one");
    await page.press("#input", "Shift+Enter");
    await page.type("#input", "line two");
    check((await page.inputValue("#input")) === "line one\nline two", "Shift+Enter did not add a newline");
    check((await page.locator(".msg").count()) === 0, "Shift+Enter sent the message");
    await page.evaluate(() => {
      window.__growth = [];
      new MutationObserver(() => {
        const s = document.querySelector(".msg.assistant.streaming .body");
        if (s) window.__growth.push(s.textContent.length);
      }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
    });
    await sendWithEnter(page, "Hello! Who are you?");
    await page.locator("#stop").waitFor({ state: "visible" });
    await waitIdle(page);
    const growth = await page.evaluate(() => window.__growth);
    const distinct = [...new Set(growth.filter((n) => n > 0))];
    check(distinct.length >= 3, `reply did not stream: lengths seen ${JSON.stringify(growth)}`);
    const first = await last(page, ".msg.assistant .body").innerText();
    check(first.trim().length > 0, "empty reply");
    check(await page.evaluate(() => document.activeElement.id === "input"), "focus did not return to the input");
    step("stream", { updates: distinct.length, chars: first.length });

    // markdown: a scripted reply with a list, a table, code and hostile HTML.
    await sendWithEnter(page, "[[markdown]] show me the steps");
    await waitIdle(page);
    const md = last(page, ".msg.assistant .body");
    check((await md.locator("h2").count()) === 1, "no heading");
    check((await md.locator("ol > li").count()) === 2, "no ordered list");
    check((await md.locator("table th").count()) === 2 && (await md.locator("table td").count()) === 2, "no table");
    check((await md.locator("pre > code").innerText()).includes('fmt.Println("hi")'), "no code block");
    check((await md.locator("code").first().innerText()) === "airlock verify", "no inline code");
    check((await md.locator("img, script, iframe, [onerror]").count()) === 0, "unsafe HTML survived sanitizing");
    check((await md.innerText()).includes('<img src=x onerror="window.__xss=1">'), "raw HTML is not shown as text");
    const hrefs = await md.locator("a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    check(hrefs.every((h) => h === null || !/^\s*javascript:/i.test(h)), `javascript: link kept: ${hrefs}`);
    check(await page.evaluate(() => window.__xss === undefined), "injected script ran");
    const history = chatBodies.at(-1).messages;
    check(chatBodies.at(-1).stream === true, "chat request is not streamed");
    check(history.length === 3 && history[0].content === "Hello! Who are you?" && history[1].content.length > 0,
      `multi-turn history not sent: ${JSON.stringify(history)}`);
    check(history.map((m) => m.role).join() === "user,assistant,user", `history roles ${history.map((m) => m.role)}`);
    await last(page, ".msg.assistant button.copy").click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    check(copied.startsWith("## Deploy steps") && copied.includes("| file | size |"), `copy gave ${JSON.stringify(copied.slice(0, 40))}`);
    step("markdown");

    // stop: a slow reply is stopped mid-way and stops growing.
    await sendWithEnter(page, "[[slow]] tell me a long story");
    await page.waitForFunction(() => (document.querySelector(".msg.streaming .body")?.textContent.length || 0) > 0);
    await page.click("#stop");
    await waitIdle(page);
    const stopped = last(page, ".msg.assistant");
    check((await stopped.locator(".note").innerText()).includes("Stopped"), "no stopped note");
    const lenAtStop = (await stopped.locator(".body").innerText()).length;
    await page.waitForTimeout(800);
    check((await stopped.locator(".body").innerText()).length === lenAtStop, "reply kept growing after stop");
    step("stop");

    // emotion: the mode switch sends the text to /api/infer.
    await page.click("label[for=mode-emotion]");
    check(await page.isChecked("#mode-emotion"), "emotion mode not selected");
    await sendWithEnter(page, "这个产品非常好用，我很满意！");
    const label = last(page, ".msg.assistant .label");
    await label.waitFor();
    const got = await label.getAttribute("data-label");
    check(got === "正面" || got === "负面", `label ${got}`);
    check(/confidence \d+(\.\d)?%/.test(await last(page, ".msg.assistant .note").innerText()), "no confidence shown");
    await page.screenshot({ path: join(ARTIFACTS, "chat.png"), fullPage: true });
    step("emotion", { label: got });

    // errors: 429, 401 and an unreachable server each get a clear message.
    await page.click("label[for=mode-chat]");
    const fail = async (handler, want) => {
      await page.route("**/v1/chat/completions", handler);
      await sendWithEnter(page, "hello again");
      await waitIdle(page);
      const msg = await page.locator("#status").innerText();
      check(want.test(msg), `error message ${JSON.stringify(msg)} does not match ${want}`);
      await page.unroute("**/v1/chat/completions");
    };
    const errBody = (code) => JSON.stringify({ error: { message: "x", type: "t", param: null, code } });
    await fail((r) => r.fulfill({ status: 429, headers: { "Retry-After": "1", "Content-Type": "application/json" }, body: errBody("rate_limit_exceeded") }), /busy \(429\)/);
    await fail((r) => r.fulfill({ status: 401, headers: { "Content-Type": "application/json" }, body: errBody("invalid_api_key") }), /401/);
    await fail((r) => r.abort("connectionrefused"), /Cannot reach the server/);
    const sse = (...events) => (r) => r.fulfill({ status: 200, headers: { "Content-Type": "text/event-stream" },
      body: events.map((e) => `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`).join("") });
    const partial = { choices: [{ index: 0, delta: { content: "partial **reply**" } }] };
    await fail(sse(partial, { error: { message: "the audit log cannot be written" } }), /cut off: the audit log cannot be written/);
    check((await last(page, ".msg.assistant .body strong").innerText()) === "reply", "partial reply lost after a stream error");
    await fail(sse(partial), /cut off/); // the stream ends without [DONE]
    step("errors");

    // persist: the conversation survives a reload (sessionStorage) and
    // "New chat" clears it.
    const count = await page.locator(".msg").count();
    await page.reload();
    await page.locator(".msg").nth(count - 1).waitFor();
    check((await page.locator(".msg").count()) === count, "conversation lost on reload");
    await page.click("#new-chat");
    check((await page.locator(".msg").count()) === 0, "new chat did not clear");
    check(await page.evaluate(() => JSON.parse(sessionStorage.getItem("airlock.chat.v1")).messages.length === 0), "storage not cleared");
    step("persist");

    // narrow: a phone-sized window in Chinese, no horizontal scrolling.
    await page.click("#lang");
    check((await page.innerText("#send")) === "发送", "language switch failed");
    await page.setViewportSize({ width: 360, height: 740 });
    await sendWithEnter(page, "[[markdown]] 部署步骤");
    await waitIdle(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `page scrolls sideways by ${overflow}px at 360px`);
    await page.screenshot({ path: join(ARTIFACTS, "chat-narrow.png") });
    step("narrow");

    check(consoleErrors.filter((e) => !/status of (401|429)|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)).length === 0,
      `page errors: ${consoleErrors}`);
    console.log(JSON.stringify({ ok: violations.length === 0, violations }));
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, "chat-failure.png"), fullPage: true }).catch(() => {});
    console.log(JSON.stringify({ ok: false, violations, error: String(e && e.stack || e) }));
    process.exitCode = 1;
  } finally {
    await context.close();
  }
  if (violations.length) process.exitCode = 1;
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, violations, error: String(e && e.stack || e) }));
  process.exit(1);
});
