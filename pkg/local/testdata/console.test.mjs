// The operator console in headless Chromium (playwright-core, Debian's chromium), against
// the local stack that TestConsoleInABrowser (pkg/local) seeds and passes in the
// environment. The tests run in order on one page, as an operator would use it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test -run TestConsoleInABrowser ./pkg/local`);
  return v;
};
const CONSOLE_URL = env("CONSOLE_URL");
const API_URL = env("API_URL");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const FAILED_ID = env("FAILED_ID");
const DELETED_ID = env("DELETED_ID");
const STUDENT = env("STUDENT");
const STUDENT_SANDBOX = env("STUDENT_SANDBOX");
const CONTROL_URL = env("CONTROL_URL");
const SHORT_RESERVATION = env("SHORT_RESERVATION");
// How long a step may wait for the page: until the Go test's binary is near its -timeout
// (testkit.Patience), so a busy machine never fails a step that is merely slow.
const STEP_TIMEOUT = Number(env("STEP_TIMEOUT_MS"));

// api calls the admin API from Node, to check what the page shows against it.
async function api(method, p, body) {
  const headers = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(API_URL + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  assert.ok(resp.ok, `${method} ${p}: ${resp.status}`);
  return resp.json();
}

// csp changes what the fake CSP lists (TestConsoleInABrowser serves CONTROL_URL).
async function csp(action) {
  const resp = await fetch(`${CONTROL_URL}/csp/${action}`, { method: "POST" });
  assert.ok(resp.ok, `csp ${action}: ${resp.status}`);
}

// sync runs a sync through the admin API and waits until its run is recorded.
async function sync() {
  const started = await api("POST", "/v1/admin/sync");
  for (let i = 0; i < 400; i++) {
    const runs = await api("GET", "/v1/admin/jobs/sync?limit=5");
    const run = runs.runs.find((r) => r.run_id === started.run_id);
    if (run) return run;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`sync run ${started.run_id} never recorded`);
}

// The page shows instants in local time; Node and Chromium share the machine's zone.
const pad = (n) => String(n).padStart(2, "0");
const localDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const localMinute = (d) => `${localDate(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
const localTime = (unix) => {
  const d = new Date(unix * 1000);
  return `${localDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};

let context, page, profile;
// What the page must not do: console errors, page errors, CSP violations, failed
// requests, and error answers other than the ones a step expects.
const problems = [];
const violations = [];
let expectedStatus = new Set();

before(async () => {
  profile = await mkdtemp(path.join(tmpdir(), "console-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: env("CHROMIUM"),
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  await page.exposeFunction("reportViolation", (v) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.reportViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`),
    );
  });
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // Chromium logs every 4xx answer of fetch as a console error; the one a step
    // expects (the wrong token's 401) is checked by the response listener instead.
    const status = /status of (\d+)/.exec(m.text());
    if (status && expectedStatus.has(Number(status[1]))) return;
    problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !expectedStatus.has(r.status())) problems.push(`answer ${r.status()} for ${r.request().method()} ${r.url()}`);
    if (!r.url().startsWith(API_URL)) problems.push(`a request outside the API: ${r.url()}`);
  });
});

after(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

test("the page asks for the token, and keeps it nowhere but sessionStorage", async () => {
  await page.goto(CONSOLE_URL);
  const input = page.getByLabel("Admin token");
  await input.waitFor();
  assert.ok(await input.evaluate((e) => e === document.activeElement), "the token field has the focus");
  assert.equal(await page.locator("#dashboard").isHidden(), true);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

test("a wrong token goes back to the prompt with the envelope's message and request ID", async () => {
  expectedStatus = new Set([401]);
  const answer = page.waitForResponse((r) => r.url().endsWith("/v1/admin/stats"));
  await page.getByLabel("Admin token").fill("not-the-admin-token-0123456789abcdef");
  await page.keyboard.press("Enter");
  const resp = await answer;
  assert.equal(resp.status(), 401);
  const body = await resp.json();
  const error = page.locator("#login-error");
  await error.getByText(body.detail.message).waitFor();
  assert.equal(await error.locator(".request-id").textContent(), body.detail.request_id);
  assert.equal(await page.locator("#login").isVisible(), true);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "the refused token is forgotten");
  expectedStatus = new Set();
});

test("the good token opens the dashboard; the token is in sessionStorage only", async () => {
  await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#status-counts [data-stat=total] dd").waitFor();
  assert.equal(await page.locator("#login").isHidden(), true);
  const storage = await page.evaluate(() => Object.values(sessionStorage));
  assert.deepEqual(storage, [ADMIN_TOKEN]);
  assert.equal((await context.cookies()).length, 0);
  assert.ok(!page.url().includes(ADMIN_TOKEN));
  assert.equal(await page.evaluate(() => localStorage.length), 0);
});

test("the counts shown equal GET /v1/admin/stats", async () => {
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.waitForResponse((r) => r.url().endsWith("/v1/admin/stats"));
  const stats = await api("GET", "/v1/admin/stats");
  // The counts: every number of the answer but its instants (*_at, unix seconds).
  assert.equal(typeof stats.oldest_pending_deletion_at, "number", "a deletion is pending");
  const numeric = Object.entries(stats).filter(([k, v]) => typeof v === "number" && !k.endsWith("_at"));
  await page.waitForFunction(
    (want) => Object.entries(want).every(([k, v]) => document.querySelector(`#status-counts [data-stat="${k}"] dd`)?.textContent === String(v)),
    Object.fromEntries(numeric),
  );
  const shown = await page.$$eval("#status-counts [data-stat]", (els) => els.map((e) => [e.dataset.stat, Number(e.querySelector("dd").textContent)]));
  assert.deepEqual(Object.fromEntries(shown), Object.fromEntries(numeric));
  const prefixes = await page.$$eval("#prefix-counts [data-prefix]", (els) => els.map((e) => [e.dataset.prefix, Number(e.querySelector("dd").textContent)]));
  assert.deepEqual(Object.fromEntries(prefixes), stats.available_by_prefix);
  // Each prefix's level, rate and forecast, as the pool-metrics job stored them (the test
  // seeds lab low and other fine); a low prefix says why.
  assert.deepEqual(stats.prefixes.map((p) => p.prefix), ["lab", "other"]);
  const signals = await page.$$eval("#prefix-signals tbody tr[data-prefix]", (trs) =>
    trs.map((tr) => {
      const field = (f) => tr.querySelector(`[data-field="${f}"]`).textContent;
      return { prefix: tr.dataset.prefix, low: tr.dataset.low, available: Number(field("available")), lowWater: Number(field("low_water")), rate: field("per_minute"), forecast: field("forecast"), state: field("state") };
    }),
  );
  assert.deepEqual(
    signals.map(({ state, ...rest }) => rest),
    stats.prefixes.map((p) => ({
      prefix: p.prefix, low: String(p.reasons.length > 0), available: p.available, lowWater: p.low_water, rate: p.per_minute.toFixed(2),
      forecast: p.minutes_to_empty === null ? "never" : `${Math.round(p.minutes_to_empty)} min`,
    })),
  );
  assert.match(signals[0].state, /^low: below its low-water mark, runs out within the lead time$/);
  assert.equal(signals[1].state, "ok");
  assert.equal(signals[1].forecast, "never");
  // The chart draws one bar per status, labelled for screen readers.
  assert.equal(await page.locator("#status-chart svg g[data-key]").count(), numeric.length - 1);
  assert.match(await page.locator("#status-chart svg desc").textContent(), new RegExp(`deletion failed ${stats.deletion_failed}`));
  // The lists agree with the counts.
  assert.equal(await page.locator("#failed-table tbody tr").count(), stats.deletion_failed);
  assert.equal(await page.locator("#stale-table tbody tr").count(), stats.stale);
  assert.equal(await page.locator("#pending-table tbody tr").count(), stats.pending_deletion);
});

test("a screenshot at 1280×800", async () => {
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.waitForResponse((r) => r.url().endsWith("/v1/admin/stats"));
  await page.evaluate(() => window.scrollTo(0, 0));
  const file = path.join(env("ARTIFACTS_DIR"), "console-1280x800.png");
  await page.screenshot({ path: file });
  console.log(`screenshot: ${file}`);
});

test("every control is reachable with Tab (auto-refresh paused meanwhile)", async () => {
  await page.getByRole("button", { name: "Pause auto-refresh" }).click();
  assert.equal(await page.locator("#pause").getAttribute("aria-pressed"), "true");
  const count = await page.evaluate(() => {
    const controls = [...document.querySelectorAll("a[href], button, input, select, [tabindex='0']")].filter(
      (e) => !e.disabled && !e.closest("[hidden], dialog") && e.getClientRects().length > 0,
    );
    controls.forEach((e, i) => e.setAttribute("data-tab-mark", String(i)));
    return controls.length;
  });
  assert.ok(count > 15, `only ${count} controls`);
  const reached = new Set();
  for (let i = 0; i < count * 2 + 10 && reached.size < count; i++) {
    await page.keyboard.press("Tab");
    const mark = await page.evaluate(() => document.activeElement?.getAttribute("data-tab-mark"));
    if (mark !== null && mark !== undefined) reached.add(mark);
  }
  const missed = await page.evaluate((seen) => [...document.querySelectorAll("[data-tab-mark]")]
    .filter((e) => !seen.includes(e.getAttribute("data-tab-mark"))).map((e) => e.outerHTML.slice(0, 80)), [...reached]);
  assert.deepEqual(missed, []);
  await page.getByRole("button", { name: "Resume auto-refresh" }).click();
});

test("search by ID shows a deleted sandbox's tombstone and history, oldest first", async () => {
  const detail = await api("GET", `/v1/admin/sandboxes/${DELETED_ID}`);
  assert.equal(detail.sandbox.status, "deleted", "a deleted sandbox stays as a tombstone with its history");
  await page.getByLabel("By", { exact: true }).selectOption("id");
  await page.getByLabel("Search for").fill(DELETED_ID);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.locator("#sandbox-detail .timeline li").first().waitFor();
  const shown = await page.$$eval("#sandbox-detail .timeline li", (els) => els.map((e) => e.dataset.to));
  assert.deepEqual(shown, detail.history.map((h) => h.to).reverse());
  assert.deepEqual(shown, ["available", "allocated", "pending_deletion", "deleted"]);
  const times = await page.$$eval("#sandbox-detail .timeline time", (els) => els.map((e) => e.getAttribute("datetime")));
  assert.deepEqual(times, [...times].sort(), "the timeline is in time order");
});

test("search by student finds the student's sandbox", async () => {
  await page.getByLabel("By", { exact: true }).selectOption("student");
  await page.getByLabel("Search for").fill(STUDENT);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const row = page.locator(`#search-results tr[data-id="${STUDENT_SANDBOX}"]`);
  await row.waitFor();
  assert.equal(await page.locator("#search-results tbody tr").count(), 1);
  await row.getByRole("button", { name: /Show sandbox/ }).press("Enter");
  await page.locator('#sandbox-detail [data-field="allocated_to_track"] dd').getByText(STUDENT).waitFor();
});

test("a deletion_failed sandbox retried from the page leaves that state", async () => {
  const before = await api("GET", `/v1/admin/sandboxes/${FAILED_ID}`);
  assert.equal(before.sandbox.status, "deletion_failed");
  const button = page.locator(`#failed-table tr[data-id="${FAILED_ID}"]`).getByRole("button", { name: /Retry the deletion/ });
  await button.focus();
  await page.keyboard.press("Enter");
  await page.locator(`#failed-table tr[data-id="${FAILED_ID}"]`).waitFor({ state: "detached" });
  const after = await api("GET", `/v1/admin/sandboxes/${FAILED_ID}`);
  assert.equal(after.sandbox.status, "pending_deletion");
  assert.equal(after.history[0].actor_kind, "admin");
  await page.locator(`#pending-table tr[data-id="${FAILED_ID}"]`).waitFor();
  assert.match(await page.locator("#announce").textContent(), new RegExp(`${FAILED_ID} is given back to cleanup`));
});

test("the bulk delete asks first, naming the count; Cancel deletes nothing", async () => {
  const stats = await api("GET", "/v1/admin/stats");
  await page.getByRole("button", { name: /all stale sandboxes/ }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), new RegExp(`records of ${stats.stale} stale sandboxes`));
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  assert.equal((await api("GET", "/v1/admin/stats")).stale, stats.stale);
});

test("a bulk delete the pool moved under deletes nothing and says so with both numbers", async () => {
  const stats = await api("GET", "/v1/admin/stats");
  assert.equal(stats.stale, 2);
  await page.getByRole("button", { name: /all stale sandboxes/ }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /records of 2 stale sandboxes/);
  // While the operator reads, the CSP lists the two again and a sync brings them back.
  await csp("list-all");
  assert.equal((await sync()).counts.unstaled, 2);
  expectedStatus = new Set([409]);
  const answer = page.waitForResponse((r) => r.url().includes("/v1/admin/bulk-delete"));
  await dialog.getByRole("button", { name: "Delete records" }).click();
  const resp = await answer;
  assert.equal(resp.status(), 409);
  const sent = new URL(resp.url()).searchParams;
  assert.equal(sent.get("status"), "stale");
  assert.equal(sent.get("expected_count"), "2");
  assert.ok(Number(sent.get("status_before")) <= Date.now() / 1000, `status_before ${sent.get("status_before")}`);
  const body = await resp.json();
  assert.equal(body.detail.code, "POOL_CHANGED");
  await page.locator("#error").getByText(body.detail.message).waitFor();
  assert.match(body.detail.message, /You confirmed 2 stale record\(s\).*0 match now/);
  const after = await api("GET", "/v1/admin/stats");
  assert.equal(after.retired, stats.retired, "nothing was retired");
  await page.locator("#stale-count").getByText("(0)").waitFor();
  expectedStatus = new Set();
});

test("a confirmed bulk delete sends the count and its time, and deletes exactly that", async () => {
  // The CSP stops listing the two again: two syncs make them stale.
  await csp("hide-gone");
  await sync();
  assert.equal((await sync()).counts.marked_stale, 2);
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.locator("#stale-count").getByText("(2)").waitFor();
  const before = await api("GET", "/v1/admin/stats");
  await page.getByRole("button", { name: /all stale sandboxes/ }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  const request = page.waitForRequest((r) => r.url().includes("/v1/admin/bulk-delete"));
  await dialog.getByRole("button", { name: "Delete records" }).click();
  const sent = new URL((await request).url()).searchParams;
  assert.equal(sent.get("expected_count"), "2");
  await page.locator("#announce").getByText("Deleted 2 records, skipped 0 (completed).").waitFor();
  const after = await api("GET", "/v1/admin/stats");
  assert.equal(after.stale, 0);
  assert.equal(after.retired, before.retired + 2);
});

test("sync triggered from the page shows its finished run", async () => {
  const trigger = page.waitForResponse((r) => r.url().endsWith("/v1/admin/sync") && r.request().method() === "POST");
  await page.getByRole("button", { name: "Run sync now" }).click();
  const started = await (await trigger).json();
  const result = page.locator(`#job-result [data-run-id="${started.run_id}"][data-state="finished"]`);
  await result.waitFor();
  const runs = await api("GET", "/v1/admin/jobs/sync?limit=20");
  const run = runs.runs.find((r) => r.run_id === started.run_id);
  assert.ok(run, "the run is recorded");
  assert.equal(await result.getAttribute("data-outcome"), run.outcome);
  assert.match(await result.textContent(), new RegExp(`listed ${run.counts.listed}`));
  await page.locator(`#job-runs [data-job="sync"] code`).getByText(started.run_id).waitFor();
  await page.screenshot({ path: path.join(env("ARTIFACTS_DIR"), "console-full-page.png"), fullPage: true });
});

test("drain on and off from the page, as the API sees it; ending asks first, naming every drain", async () => {
  const box = page.locator("#drain");
  await box.waitFor();
  assert.equal((await api("GET", "/v1/admin/stats")).drains.length, 0);
  // An operator drains one prefix with brokerctl while the page drains everything.
  const prefixDrain = api("PUT", "/v1/admin/drain", { prefix: "lab-a", reason: "CSP maintenance" });
  await page.getByRole("button", { name: "Drain every allocation" }).click();
  await prefixDrain;
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.locator('#drain[data-drains="2"]').waitFor();
  const drains = (await api("GET", "/v1/admin/stats")).drains;
  assert.deepEqual(drains.map((d) => d.prefix).sort(), ["", "lab-a"]);

  await page.getByRole("button", { name: "End every drain" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  const question = await dialog.textContent();
  assert.match(question, /every allocation \(from the operator console\)/);
  assert.match(question, /prefix lab-a \(CSP maintenance\)/);
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  assert.equal((await api("GET", "/v1/admin/stats")).drains.length, 2, "Cancel ends nothing");

  await page.getByRole("button", { name: "End every drain" }).click();
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "End every drain" }).click();
  await page.locator('#drain[data-drains="0"]').waitFor();
  assert.equal((await api("GET", "/v1/admin/stats")).drains.length, 0);
  assert.match(await page.locator("#announce").textContent(), /ended: (every allocation, prefix lab-a|prefix lab-a, every allocation)/);
});

// A profile as the profiles table shows it, field by field: an unset term is "default".
const profileAsShown = (p) => ({
  lab: p.lab || "any lab",
  prefix: p.prefix || "any prefix",
  ...Object.fromEntries(
    ["lab_duration_minutes", "extension_minutes", "max_duration_minutes", "student_limit", "low_water"].map((k) => [k, p[k] ? String(p[k]) : "default"]),
  ),
  no_sandbox_message: p.no_sandbox_message || "default",
  updated: `${localTime(p.updated_at)} by ${p.updated_by}`,
});

// shownRows reads a table's rows as the operator sees them: each cell's text by its field.
const shownRows = (rows) =>
  page.$$eval(rows, (trs) => trs.map((tr) => Object.fromEntries([...tr.querySelectorAll("td[data-field]")].map((td) => [td.dataset.field, td.textContent]))));

const profileRow = (lab, prefix) => page.locator(`#profiles-table tr[data-lab="${lab}"][data-prefix="${prefix}"]`);
const profileForm = () => page.locator("#profile-form");
const isPut = (r) => r.url().endsWith("/v1/admin/profiles") && r.request().method() === "PUT";
const PAGE_PROFILE = { lab: "page-lab", prefix: "", lab_duration_minutes: 90, extension_minutes: 15, max_duration_minutes: 150, student_limit: 1, low_water: 0, no_sandbox_message: "Page lab is full." };

test("the lab profiles table equals GET /v1/admin/profiles", async () => {
  const { profiles } = await api("GET", "/v1/admin/profiles");
  assert.equal(profiles.length, 2, "the test seeds two");
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.locator("#profiles-count").getByText(`(${profiles.length})`).waitFor();
  assert.deepEqual(await shownRows("#profiles-table tbody tr"), profiles.map(profileAsShown));
});

test("a profile saved from the page is what the API has", async () => {
  const form = profileForm();
  await form.getByRole("button", { name: "Clear the form" }).click();
  await form.getByLabel("Lab (empty: any lab)").fill(PAGE_PROFILE.lab);
  await form.getByLabel("Lab duration (minutes)").fill(String(PAGE_PROFILE.lab_duration_minutes));
  await form.getByLabel("Extension step (minutes)").fill(String(PAGE_PROFILE.extension_minutes));
  await form.getByLabel("Duration cap (minutes)").fill(String(PAGE_PROFILE.max_duration_minutes));
  await form.getByLabel("Student limit (sandboxes)").fill(String(PAGE_PROFILE.student_limit));
  await form.getByLabel("Message when none is left (409)").fill(PAGE_PROFILE.no_sandbox_message);
  const answer = page.waitForResponse(isPut);
  await form.getByRole("button", { name: "Save profile" }).click();
  assert.equal((await answer).status(), 200);
  const saved = (await api("GET", "/v1/admin/profiles")).profiles.find((p) => p.lab === "page-lab" && p.prefix === "");
  assert.ok(saved, "the API has the profile");
  const { updated_at, updated_by, ...terms } = saved;
  assert.deepEqual(terms, PAGE_PROFILE);
  assert.ok(updated_at > 0 && updated_by, `updated ${updated_at} by ${updated_by}`);
  await profileRow("page-lab", "").waitFor();
  assert.deepEqual((await shownRows('#profiles-table tr[data-lab="page-lab"]'))[0], profileAsShown(saved));
});

test("a bad value shows the envelope's message and request ID, and writes nothing", async () => {
  const before = await api("GET", "/v1/admin/profiles");
  // By the keyboard: an auto-refresh between a mouse's press and release re-renders the
  // table and the click is lost (a mouse user clicks again); the focus, and so Enter,
  // follows the button across a refresh (dom.js replace).
  await profileRow("page-lab", "").getByRole("button", { name: "Edit the profile of lab page-lab" }).focus();
  await page.keyboard.press("Enter");
  const duration = profileForm().getByLabel("Lab duration (minutes)");
  assert.equal(await duration.inputValue(), "90", "Edit puts the profile in the form");
  assert.ok(await profileForm().getByLabel("Lab (empty: any lab)").evaluate((e) => e === document.activeElement));
  await duration.fill("5");
  expectedStatus = new Set([400]);
  const answer = page.waitForResponse(isPut);
  await profileForm().getByRole("button", { name: "Save profile" }).click();
  const resp = await answer;
  assert.equal(resp.status(), 400);
  const body = await resp.json();
  assert.equal(body.detail.code, "VALIDATION_ERROR");
  assert.match(body.detail.message, /lab_duration_minutes must be from 10/);
  const box = page.locator("#profile-error");
  await box.getByText(body.detail.message).waitFor();
  assert.equal(await box.locator(".request-id").textContent(), body.detail.request_id);
  assert.deepEqual(await api("GET", "/v1/admin/profiles"), before, "nothing was written");
  expectedStatus = new Set();
});

test("deleting a profile asks first: Cancel keeps it, confirmed the API has it no more", async () => {
  const has = async () => (await api("GET", "/v1/admin/profiles")).profiles.some((p) => p.lab === "page-lab");
  const remove = profileRow("page-lab", "").getByRole("button", { name: "Delete the profile of lab page-lab" });
  await remove.click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Delete the profile of lab page-lab\?/);
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "hidden" });
  assert.ok(await has(), "Cancel keeps it");
  assert.ok(await remove.evaluate((e) => e === document.activeElement), "the focus is back on Delete");

  await remove.click();
  await dialog.waitFor();
  const answer = page.waitForResponse((r) => r.url().includes("/v1/admin/profiles?") && r.request().method() === "DELETE");
  await dialog.getByRole("button", { name: "Delete the profile" }).click();
  const resp = await answer;
  assert.equal(resp.status(), 200);
  assert.equal(new URL(resp.url()).search, "?lab=page-lab");
  await profileRow("page-lab", "").waitFor({ state: "detached" });
  assert.equal(await has(), false);
  assert.equal((await api("GET", "/v1/admin/profiles")).profiles.length, 2);
});

// A reservation as the calendar shows it: the day it starts on, and its fields.
const reservationAsShown = (r) => ({
  id: r.id,
  day: localDate(new Date(r.starts_at * 1000)),
  short: r.state === "scheduled" && r.coverage === "short",
  lab: r.client ? `${r.lab} (client ${r.client})` : r.lab,
  prefix: r.prefix || "any prefix",
  seats: String(r.seats),
  set_aside: String(r.set_aside),
  state: r.state,
  coverage: r.coverage === "short" ? `short by ${r.shortfall}` : r.coverage === "ok" ? "ok" : "not checked yet",
});

const shownReservations = () =>
  page.$$eval("#reservation-calendar tbody tr", (trs) =>
    trs.map((tr) => {
      const field = (f) => tr.querySelector(`[data-field="${f}"]`).textContent;
      return {
        id: tr.dataset.id, day: tr.closest(".day").dataset.day, short: tr.classList.contains("short"),
        lab: field("lab"), prefix: field("prefix"), seats: field("seats"), set_aside: field("set_aside"), state: field("state"), coverage: field("coverage"),
      };
    }),
  );

const reservationForm = () => page.locator("#reservation-form");
// The page's reservation: three days ahead, 09:00 to 12:00 local time, far more seats than the pool has.
const workshopStart = new Date();
workshopStart.setDate(workshopStart.getDate() + 3);
workshopStart.setHours(9, 0, 0, 0);
const WORKSHOP = { lab: "page-workshop", prefix: "lab", seats: 500, starts_at: workshopStart.getTime() / 1000, ends_at: workshopStart.getTime() / 1000 + 3 * 3600, lead_minutes: 45 };
let workshopId;

test("the reservations calendar lists what the API lists, by day in time order; the short one says by how much", async () => {
  const { reservations } = await api("GET", "/v1/admin/reservations");
  const short = reservations.find((r) => r.id === SHORT_RESERVATION);
  assert.equal(short.coverage, "short", "the test seeds one short");
  assert.ok(short.shortfall > 0);
  await page.getByRole("button", { name: "Refresh now" }).click();
  const want = [...reservations].sort((a, b) => a.starts_at - b.starts_at).map(reservationAsShown);
  await page.waitForFunction((n) => document.querySelectorAll("#reservation-calendar tbody tr").length === n, want.length);
  assert.deepEqual(await shownReservations(), want);
  const row = page.locator(`#reservation-calendar tr[data-id="${SHORT_RESERVATION}"]`);
  assert.equal(await row.locator(".c-short").textContent(), `short by ${short.shortfall}`);
  const warning = page.locator("#reservations-short");
  assert.equal(await warning.isVisible(), true, "a short reservation is named above the calendar");
  assert.match(await warning.textContent(), new RegExp(`40 seats of prefix lab for lab dns-workshop, .*short by ${short.shortfall}`));
  const days = await page.$$eval("#reservation-calendar .day", (els) => els.map((e) => e.dataset.day));
  assert.deepEqual(days, [...new Set(want.map((r) => r.day))], "one group per day, in order");
});

test("the capacity dry run shows the API's numbers", async () => {
  const form = reservationForm();
  await form.getByLabel("Lab", { exact: true }).fill(WORKSHOP.lab);
  await form.getByLabel("Name prefix (empty: any)").fill(WORKSHOP.prefix);
  await form.getByLabel("Seats", { exact: true }).fill(String(WORKSHOP.seats));
  await form.getByLabel("Starts (local time)").fill(localMinute(new Date(WORKSHOP.starts_at * 1000)));
  await form.getByLabel("Ends (local time)").fill(localMinute(new Date(WORKSHOP.ends_at * 1000)));
  await form.getByLabel("Lead time (minutes)").fill(String(WORKSHOP.lead_minutes));
  const answer = page.waitForResponse((r) => r.url().includes("/v1/admin/capacity?"));
  await form.getByRole("button", { name: "Check capacity" }).click();
  const resp = await answer;
  const sent = Object.fromEntries(new URL(resp.url()).searchParams);
  assert.deepEqual(sent, { prefix: "lab", seats: "500", starts_at: String(WORKSHOP.starts_at), ends_at: String(WORKSHOP.ends_at), lead_minutes: "45" });
  const want = await api("GET", `/v1/admin/capacity?${new URLSearchParams(sent)}`);
  assert.deepEqual(await resp.json(), want);
  assert.equal(want.coverable, false);
  const result = page.locator('#reservation-result [data-coverable="false"]');
  await result.waitFor();
  const shown = await result.locator("[data-field]").evaluateAll((els) => els.map((e) => [e.dataset.field, Number(e.querySelector("dd").textContent)]));
  assert.deepEqual(Object.fromEntries(shown), {
    available: want.available, promised_to_others: want.promised_to_others, held_by_others: want.held_by_others,
    pending_deletion: want.pending_deletion, shortfall: want.shortfall,
  });
  assert.match(await result.textContent(), new RegExp(`500 seats of prefix lab from ${localTime(want.at)}: short by ${want.shortfall}\\.`));
});

test("an uncoverable reservation is refused with the numbers and nothing is created; forced after confirming, it is", async () => {
  const before = (await api("GET", "/v1/admin/reservations")).reservations.map((r) => r.id).sort();
  const check = await api("GET", `/v1/admin/capacity?${new URLSearchParams({ prefix: "lab", seats: 500, starts_at: WORKSHOP.starts_at, ends_at: WORKSHOP.ends_at, lead_minutes: 45 })}`);
  expectedStatus = new Set([409]);
  const refusal = page.waitForResponse((r) => r.url().includes("/v1/admin/reservations") && r.request().method() === "POST");
  await reservationForm().getByRole("button", { name: "Reserve", exact: true }).click();
  const resp = await refusal;
  assert.equal(resp.status(), 409);
  const body = await resp.json();
  assert.equal(body.detail.code, "RESERVATION_UNCOVERABLE");
  assert.match(
    body.detail.message,
    new RegExp(`^500 seats of prefix "lab" cannot be covered at .*: ${check.available} available, ${check.promised_to_others} promised to other reservations, ${check.pending_deletion} pending deletion .*: ${check.shortfall} short`),
  );
  const box = page.locator("#reservation-error");
  await box.getByText(body.detail.message).waitFor();
  assert.equal(await box.locator(".request-id").textContent(), body.detail.request_id);
  assert.deepEqual((await api("GET", "/v1/admin/reservations")).reservations.map((r) => r.id).sort(), before, "nothing was created");
  expectedStatus = new Set();

  await page.getByRole("button", { name: "Reserve anyway (force)…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.ok((await dialog.textContent()).includes(body.detail.message), "the confirmation repeats the numbers");
  const created = page.waitForResponse((r) => r.url().includes("/v1/admin/reservations?force=true") && r.request().method() === "POST");
  await dialog.getByRole("button", { name: "Reserve anyway" }).click();
  const answer = await created;
  assert.equal(answer.status(), 201);
  workshopId = (await answer.json()).reservation.id;
  const after = (await api("GET", "/v1/admin/reservations")).reservations;
  assert.deepEqual(after.map((r) => r.id).sort(), [...before, workshopId].sort());
  const r = after.find((x) => x.id === workshopId);
  assert.deepEqual(
    { lab: r.lab, client: r.client, prefix: r.prefix, seats: r.seats, starts_at: r.starts_at, ends_at: r.ends_at, lead_minutes: r.lead_minutes, overflow: r.overflow, state: r.state },
    { ...WORKSHOP, client: "", overflow: false, state: "scheduled" },
  );
  const row = page.locator(`#reservation-calendar tr[data-id="${workshopId}"]`);
  await row.waitFor();
  assert.equal(await row.evaluate((tr) => tr.closest(".day").dataset.day), localDate(workshopStart));
  await page.locator(`#reservation-result [data-created="${workshopId}"]`).waitFor();
  assert.equal(await page.getByRole("button", { name: "Reserve anyway (force)…" }).isVisible(), false, "force is offered once");
});

test("cancelling a reservation asks first; confirmed, the API has it cancelled", async () => {
  const state = async () => (await api("GET", "/v1/admin/reservations")).reservations.find((r) => r.id === workshopId).state;
  const row = page.locator(`#reservation-calendar tr[data-id="${workshopId}"]`);
  await row.getByRole("button", { name: /^Cancel reservation/ }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), new RegExp(`Cancel reservation ${workshopId}: 500 seats of prefix lab for lab page-workshop`));
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  assert.equal(await state(), "scheduled", "Escape keeps it");

  await row.getByRole("button", { name: /^Cancel reservation/ }).click();
  await dialog.waitFor();
  const answer = page.waitForResponse((r) => r.url().endsWith(`/v1/admin/reservations/${workshopId}`) && r.request().method() === "DELETE");
  await dialog.getByRole("button", { name: "Cancel the reservation" }).click();
  assert.equal((await answer).status(), 200);
  // The reservations job (every minute) ends a cancelled reservation once it has returned
  // its set-aside: either state is the cancel, seen by the API.
  await page.locator(`#reservation-calendar tr[data-id="${workshopId}"]:is([data-state="cancelled"], [data-state="ended"])`).waitFor();
  assert.ok(["cancelled", "ended"].includes(await state()));
  assert.equal(await row.getByRole("button").count(), 0, "nothing left to cancel");
});

test("the page's CSP held: no console error, blocked resource or failed request", async () => {
  assert.deepEqual(problems, []);
  assert.deepEqual(violations, []);
  // The listener works: an inline style attribute, which the CSP forbids, is reported.
  await page.evaluate(() => document.body.setAttribute("style", "color: red"));
  await page.waitForFunction(() => true);
  for (const until = Date.now() + STEP_TIMEOUT; violations.length === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
  assert.equal(violations.length, 1, `violations ${violations}`);
  assert.match(violations[0], /^style-src-attr/);
});

test("a token the API stops taking sends the operator back to the prompt", async () => {
  expectedStatus = new Set([401]);
  // Set and refresh in one turn of the page, so the auto-refresh cannot come between.
  await page.evaluate(() => {
    sessionStorage.setItem("sandbox-broker-admin-token", "an-expired-token-0123456789abcdefghij");
    document.getElementById("refresh").click();
  });
  await page.locator("#login-error").getByText("Missing or invalid bearer token").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});
