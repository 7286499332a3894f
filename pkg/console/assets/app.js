// The console's entry point: the token prompt, the refresh loop, and the operator's
// actions. Every call goes to the admin API (api.js); a 401 or 403 sends the operator back
// to the prompt with the token forgotten.

import { ApiError, call, listAll, sandboxPath, token } from "./api.js";
import { renderFailed, renderPending, renderStale, staleFor } from "./deletions.js";
import { el, localTime, replace } from "./dom.js";
import { loadRuns, renderRuns, runUntilDone } from "./jobs.js";
import { renderDrain, renderPool, statusCounts } from "./pool.js";
import { onSearchError, search } from "./search.js";

const REFRESH_MS = 10_000;
const $ = (id) => document.getElementById(id);

let paused = false;
let loading = null;
let latest = { stats: null, stale: null };
let lastSummary = "";

function announce(message) {
  $("announce").textContent = message;
}

function showLogin(error) {
  $("dashboard").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  const box = $("login-error");
  box.hidden = !error;
  if (error) replace(box, describe(error));
  $("token").focus();
}

function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("session").hidden = false;
}

// describe is an error as the operator reads it: the envelope's message, its code and
// the request ID to find it in the logs.
function describe(e) {
  if (!(e instanceof ApiError)) return el("p", {}, el("strong", { text: e.message }));
  return el(
    "p",
    { "data-code": e.code },
    el("strong", { text: e.message }),
    e.code ? ` (${e.code})` : "",
    e.requestId ? el("span", {}, " — request ID ", el("code", { class: "request-id", text: e.requestId })) : "",
  );
}

// failed handles any failed call: a refused token ends the session, anything else shows.
function failed(e) {
  if (e instanceof ApiError && e.refusesToken) {
    token.clear();
    latest = { stats: null, stale: null };
    showLogin(e);
    return;
  }
  const box = $("error");
  replace(box, describe(e));
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  replace($("error"));
}

async function refresh() {
  if (!token.get()) return;
  if (loading) return loading;
  loading = (async () => {
    // The stats first: a refused token then shows one error, not one per list.
    const stats = await call("GET", "v1/admin/stats");
    const [pending, deletionFailed, stale, runs] = await Promise.all([
      listAll({ status: "pending_deletion" }),
      listAll({ status: "deletion_failed" }),
      listAll({ status: "stale" }),
      loadRuns(),
    ]);
    showDashboard();
    clearError();
    latest = { stats, stale };
    renderPool(stats);
    renderDrain(stats, toggleDrain);
    renderPending(pending);
    renderFailed(deletionFailed, retry);
    renderStale(stale);
    renderRuns(runs);
    $("updated").textContent = `Updated ${localTime(new Date())}`;
    const summary = statusCounts(stats).map(([k, v]) => `${v} ${k.replaceAll("_", " ")}`).join(", ");
    if (summary !== lastSummary) announce(`Pool: ${summary}`);
    lastSummary = summary;
  })()
    .catch(failed)
    .finally(() => {
      loading = null;
    });
  return loading;
}

async function retry(sandbox, button) {
  button.disabled = true;
  try {
    await call("POST", `${sandboxPath(sandbox.sandbox_id)}/retry-deletion`);
    await refresh();
    announce(`Sandbox ${sandbox.sandbox_id} is given back to cleanup.`);
  } catch (e) {
    button.disabled = false;
    failed(e);
  }
}

// toggleDrain starts a drain of every allocation or ends every drain. Starting answers
// once no allocation that did not see the drain can still land (about 12 s), so the button
// waits disabled.
async function toggleDrain(on, button) {
  button.disabled = true;
  announce(on ? "Starting the drain; the broker answers once no allocation can land." : "Ending every drain.");
  try {
    if (on) await call("PUT", "v1/admin/drain", { prefix: "", reason: "from the operator console" });
    else await call("DELETE", "v1/admin/drain");
    await refresh();
    announce(on ? "Drain is on." : "Drain is off.");
  } catch (e) {
    failed(e);
  } finally {
    button.disabled = false;
  }
}

// confirm asks in a modal dialog; Escape or Cancel answers no.
function confirm(message, action) {
  const dialog = $("confirm");
  $("confirm-text").textContent = message;
  $("confirm-yes").textContent = action;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onClose = () => done(false);
    dialog.addEventListener("close", onClose);
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    dialog.showModal();
    $("confirm-no").focus();
  });
}

async function bulk(button, question, action, path) {
  if (!latest.stats) return;
  const count = question();
  if (count === null) return;
  if (!(await confirm(count.text, action))) {
    button.focus();
    return;
  }
  button.disabled = true;
  try {
    const r = await call("POST", path);
    await refresh();
    announce(`Deleted ${r.deleted} records, skipped ${r.skipped} (${r.status}).`);
  } catch (e) {
    failed(e);
  } finally {
    button.disabled = false;
    button.focus();
  }
}

function bulkStatus(status) {
  const n = latest.stats[status] ?? 0;
  const name = status.replaceAll("_", " ");
  return () => ({ text: `Delete the database records of ${n} ${name} sandbox${n === 1 ? "" : "es"}? Their CSP accounts are not deleted.` });
}

function autoStale() {
  const hours = Number($("grace").value);
  if (!Number.isInteger(hours) || hours < 1 || hours > 720) {
    failed(new Error("The grace period is a whole number of hours from 1 to 720."));
    return null;
  }
  const n = staleFor(latest.stale, hours, Date.now() / 1000);
  return {
    text: `Delete the database records of the ${n} sandbox${n === 1 ? "" : "es"} stale for at least ${hours} hours (of ${latest.stats.stale} stale)? Their CSP accounts are not deleted.`,
  };
}

async function trigger(button) {
  button.disabled = true;
  try {
    const run = await runUntilDone(button.dataset.job);
    await refresh();
    if (run) announce(`${button.dataset.job} finished: ${run.outcome}`);
  } catch (e) {
    failed(e);
  } finally {
    button.disabled = false;
  }
}

let timer = null;
function schedule() {
  clearInterval(timer);
  timer = setInterval(() => {
    if (!paused && !document.hidden) refresh();
  }, REFRESH_MS);
}

function wire() {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (!value) {
      showLogin(new Error("Type the admin token."));
      return;
    }
    token.set(value);
    $("token").value = "";
    await refresh();
    if (token.get()) $("main").focus();
  });
  $("refresh").addEventListener("click", () => refresh());
  $("pause").addEventListener("click", (e) => {
    paused = !paused;
    e.currentTarget.setAttribute("aria-pressed", String(paused));
    e.currentTarget.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
    announce(paused ? "Auto-refresh paused." : "Auto-refresh resumed.");
  });
  $("signout").addEventListener("click", () => {
    token.clear();
    showLogin(null);
  });
  $("bulk-stale").addEventListener("click", (e) => bulk(e.currentTarget, bulkStatus("stale"), "Delete records", "v1/admin/bulk-delete?status=stale"));
  $("bulk-failed").addEventListener("click", (e) =>
    bulk(e.currentTarget, bulkStatus("deletion_failed"), "Delete records", "v1/admin/bulk-delete?status=deletion_failed"),
  );
  $("auto-stale").addEventListener("click", (e) =>
    bulk(e.currentTarget, autoStale, "Delete records", `v1/admin/auto-delete-stale?grace_period_hours=${encodeURIComponent($("grace").value)}`),
  );
  for (const id of ["run-sync", "run-cleanup"]) $(id).addEventListener("click", (e) => trigger(e.currentTarget));
  onSearchError(failed);
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("search-q").value.trim();
    if (q) search($("search-by").value, q).catch(failed);
  });
}

wire();
schedule();
if (token.get()) refresh();
else showLogin(null);
