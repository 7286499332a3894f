// The jobs' last runs, and the triggers of sync and cleanup: a trigger answers a run ID at
// once; the run shows in GET v1/admin/jobs/{name} when it ends.

import { call } from "./api.js";
import { el, instant, replace, table, text } from "./dom.js";

export const JOBS = ["sync", "cleanup", "expiry", "stale-cleanup", "pool-metrics", "reservations"];
const SHOWN_RUNS = 5;

export async function loadRuns() {
  return Promise.all(
    JOBS.map(async (job) => {
      try {
        return await call("GET", `v1/admin/jobs/${job}?limit=${SHOWN_RUNS}`);
      } catch (e) {
        if (e.code === "JOB_NOT_FOUND") return { job, runs: [], missing: true };
        throw e;
      }
    }),
  );
}

export function renderRuns(all) {
  replace(
    document.getElementById("job-runs"),
    all.map((j) =>
      el(
        "div",
        { class: "job", "data-job": j.job },
        el("h3", { text: j.job }),
        j.missing
          ? el("p", { class: "muted", text: "This broker has no such job." })
          : table(`Last runs of ${j.job}, newest first`, runColumns, j.runs, "No run recorded yet."),
      ),
    ),
  );
}

const runColumns = [
  { label: "Started", cell: (r) => instant(r.started_at) },
  { label: "Outcome", cell: (r) => outcome(r.outcome) },
  { label: "Duration", cell: (r) => `${r.duration_ms} ms` },
  { label: "Counts", cell: (r) => counts(r.counts) },
  { label: "Alarm", cell: (r) => (r.alarm ? el("strong", { class: "alarm", text: r.alarm }) : text(null)) },
  { label: "Reason / errors", cell: (r) => text([r.reason, ...(r.errors || [])].filter(Boolean).join("; ")) },
  { label: "Run ID", cell: (r) => el("code", { text: r.run_id }) },
];

const outcome = (o) => el("span", { class: `badge o-${o}`, text: o });

function counts(c) {
  const entries = Object.entries(c || {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return text(null);
  return el("span", { class: "kv" }, entries.map(([k, v]) => `${k} ${v}`).join(", "));
}

// runUntilDone triggers job and polls its runs until the run it started is recorded
// (or about two minutes pass), then shows it in the job result area.
export async function runUntilDone(job) {
  const result = document.getElementById("job-result");
  const started = await call("POST", `v1/admin/${job}`);
  const run = started.run_id;
  replace(result, el("p", { "data-run-id": run, "data-state": "running", text: `${job}: run ${run} started…` }));
  for (let i = 0; i < 120; i++) {
    await sleep(1000);
    const answer = await call("GET", `v1/admin/jobs/${job}?limit=20`);
    const done = answer.runs.find((r) => r.run_id === run);
    if (done) {
      replace(
        result,
        el(
          "div",
          { "data-run-id": run, "data-state": "finished", "data-outcome": done.outcome },
          el("p", {}, `${job} run `, el("code", { text: run }), " finished: ", outcome(done.outcome), ` in ${done.duration_ms} ms.`),
          el("p", {}, "Counts: ", counts(done.counts), done.alarm ? ` Alarm: ${done.alarm}.` : "", done.reason ? ` Reason: ${done.reason}.` : ""),
        ),
      );
      return done;
    }
  }
  replace(result, el("p", { "data-run-id": run, "data-state": "unknown", text: `${job}: run ${run} has not finished after two minutes; it shows in the list below when it does.` }));
  return null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
