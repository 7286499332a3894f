// The console's entry point: the token prompt, the refresh loop, and the operator's
// actions. Every call goes to the admin API (api.js); a 401 or 403 sends the operator back
// to the prompt with the token forgotten.

import { ApiError, call, callAt, listAll, sandboxPath, token } from "./api.js";
import { renderFailed, renderPending, renderStale, staleFor } from "./deletions.js";
import { localTime, replace } from "./dom.js";
import { loadRuns, renderRuns, runUntilDone } from "./jobs.js";
import { drainNames, renderDrain, renderPool, statusCounts } from "./pool.js";
import { renderProfiles, wireProfiles } from "./profiles.js";
import { renderReservations, wireReservations } from "./reservations.js";
import { onSearchError, search } from "./search.js";
import { announce, confirm, describe } from "./ui.js";

const REFRESH_MS = 10_000;
const $ = (id) => document.getElementById(id);

let paused = false;
let loading = null;
let queued = null; // the read that begins after loading ends, which fresh calls share
// latest is what the page shows: the stats, the broker's clock when it counted them
// (statsAt, unix seconds) and the stale list.
let latest = { stats: null, statsAt: null, stale: null };
let lastSummary = "";

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

// failed handles any failed call: a refused token ends the session, anything else shows
// in box (the dashboard's error box, or a form's own).
function failed(e, box = $("error")) {
  if (e instanceof ApiError && e.refusesToken) {
    token.clear();
    latest = { stats: null, statsAt: null, stale: null };
    showLogin(e);
    return;
  }
  replace(box, describe(e));
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  replace($("error"));
}

// refresh reads everything again and shows it. A call during a read joins that read,
// unless fresh: what an action wrote, and what is there when the operator presses
// Refresh now, must show, so such a read begins after the call.
async function refresh(fresh = false) {
  if (!token.get()) return;
  if (loading && fresh) {
    queued ??= loading.then(() => {
      queued = null;
      return refresh();
    });
    return queued;
  }
  if (loading) return loading;
  loading = (async () => {
    // The stats first: a refused token then shows one error, not one per list.
    const { answer: stats, at: statsAt } = await callAt("GET", "v1/admin/stats");
    const [pending, deletionFailed, stale, runs, profiles, reservations] = await Promise.all([
      listAll({ status: "pending_deletion" }),
      listAll({ status: "deletion_failed" }),
      listAll({ status: "stale" }),
      loadRuns(),
      call("GET", "v1/admin/profiles"),
      call("GET", "v1/admin/reservations"),
    ]);
    showDashboard();
    clearError();
    latest = { stats, statsAt, stale };
    renderPool(stats);
    renderDrain(stats, toggleDrain);
    renderPending(pending);
    renderFailed(deletionFailed, retry);
    renderStale(stale);
    renderRuns(runs);
    renderProfiles(profiles);
    renderReservations(reservations);
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
    await refresh(true);
    announce(`Sandbox ${sandbox.sandbox_id} is given back to cleanup.`);
  } catch (e) {
    button.disabled = false;
    failed(e);
  }
}

// toggleDrain starts a drain of every allocation, or ends every drain once the operator
// has confirmed the drains it names. Starting answers once no allocation that did not see
// the drain can still land (about 12 s), so the button waits disabled.
async function toggleDrain(on, button) {
  if (!on) {
    const names = drainNames(latest.stats.drains);
    const question = `End every drain: ${names.join(", ")}? Allocations resume within seconds, for every prefix.`;
    if (!(await confirm(question, "End every drain"))) {
      button.focus();
      return;
    }
  }
  button.disabled = true;
  announce(on ? "Starting the drain; the broker answers once no allocation can land." : "Ending every drain.");
  try {
    if (on) await call("PUT", "v1/admin/drain", { prefix: "", reason: "from the operator console" });
    const ended = on ? null : await call("DELETE", "v1/admin/drain");
    await refresh(true);
    announce(on ? "Drain is on." : `Drain is off; ended: ${drainNames(ended.ended.map((prefix) => ({ prefix }))).join(", ") || "none"}.`);
  } catch (e) {
    failed(e);
  } finally {
    button.disabled = false;
  }
}

// bulk asks the operator to confirm what question() counts, then sends the count and
// what it was counted as of, so the broker deletes exactly that or nothing (409
// POOL_CHANGED, shown with both numbers, and the counts read again). A partial answer
// (1 000 records a call) goes on with the count left.
async function bulk(button, question, action, path) {
  if (!latest.stats) return;
  const ask = question();
  if (ask === null) return;
  if (!(await confirm(ask.text, action))) {
    button.focus();
    return;
  }
  button.disabled = true;
  try {
    let left = ask.count;
    let deleted = 0;
    let skipped = 0;
    let r;
    do {
      r = await call("POST", `${path}?${new URLSearchParams({ ...ask.params, expected_count: String(left) })}`);
      deleted += r.deleted;
      skipped += r.skipped;
      left -= r.deleted + r.skipped;
    } while (r.status === "partial" && r.deleted + r.skipped > 0);
    await refresh(true);
    announce(`Deleted ${deleted} records, skipped ${skipped} (${r.status}).`);
  } catch (e) {
    if (e instanceof ApiError && e.code === "POOL_CHANGED") await refresh(true);
    failed(e);
    announce(e.message);
  } finally {
    button.disabled = false;
    button.focus();
  }
}

// asOf is when the counts shown were read, or null (and the operator told) when the
// broker's answer did not say.
function asOf() {
  if (latest.statsAt === null) failed(new Error("The broker's answer has no Date: the console cannot tell as of when it counted."));
  return latest.statsAt;
}

function bulkStatus(status) {
  return () => {
    const at = asOf();
    if (at === null) return null;
    const n = latest.stats[status] ?? 0;
    const name = status.replaceAll("_", " ");
    return {
      text: `Delete the database records of ${n} ${name} sandbox${n === 1 ? "" : "es"}? Their CSP accounts are not deleted.`,
      count: n,
      params: { status, status_before: String(at) },
    };
  };
}

function autoStale() {
  const hours = Number($("grace").value);
  if (!Number.isInteger(hours) || hours < 1 || hours > 720) {
    failed(new Error("The grace period is a whole number of hours from 1 to 720."));
    return null;
  }
  if (!latest.stale.complete) {
    failed(new Error("There are more stale sandboxes than the console reads; count them with brokerctl delete-stale."));
    return null;
  }
  const at = asOf();
  if (at === null) return null;
  const n = staleFor(latest.stale, hours, at);
  return {
    text: `Delete the database records of the ${n} sandbox${n === 1 ? "" : "es"} stale for at least ${hours} hours (of ${latest.stats.stale} stale)? Their CSP accounts are not deleted.`,
    count: n,
    params: { grace_period_hours: String(hours) },
  };
}

async function trigger(button) {
  button.disabled = true;
  try {
    const run = await runUntilDone(button.dataset.job);
    await refresh(true);
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
  $("refresh").addEventListener("click", () => refresh(true));
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
  $("bulk-stale").addEventListener("click", (e) => bulk(e.currentTarget, bulkStatus("stale"), "Delete records", "v1/admin/bulk-delete"));
  $("bulk-failed").addEventListener("click", (e) => bulk(e.currentTarget, bulkStatus("deletion_failed"), "Delete records", "v1/admin/bulk-delete"));
  $("auto-stale").addEventListener("click", (e) => bulk(e.currentTarget, autoStale, "Delete records", "v1/admin/auto-delete-stale"));
  for (const id of ["run-sync", "run-cleanup"]) $(id).addEventListener("click", (e) => trigger(e.currentTarget));
  onSearchError(failed);
  const views = { failed, refresh: () => refresh(true) };
  wireProfiles(views);
  wireReservations(views);
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
