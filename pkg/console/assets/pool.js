// The pool: counts by status, available by name prefix and each prefix's signals (level,
// rate, forecast), from GET v1/admin/stats.
// Statuses come from whatever numeric keys the answer has, so a status the API adds
// (e.g. a tombstone) shows without a change here; known ones keep their order.

import { barChart } from "./chart.js";
import { el, label, replace } from "./dom.js";

const ORDER = ["available", "allocated", "pending_deletion", "stale", "deletion_failed", "deleted", "retired"];
const KNOWN = new Set(ORDER);

// statusCounts lists the stats' statuses as [key, count]: every numeric key but total
// and the instants (*_at, unix seconds, e.g. oldest_pending_deletion_at).
export function statusCounts(stats) {
  const keys = Object.keys(stats).filter((k) => k !== "total" && !k.endsWith("_at") && typeof stats[k] === "number");
  keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return keys.map((k) => [k, stats[k]]);
}

const rank = (k) => (KNOWN.has(k) ? ORDER.indexOf(k) : ORDER.length);

export function renderPool(stats) {
  const statuses = statusCounts(stats);
  const cls = (k) => (KNOWN.has(k) ? `s-${k.replaceAll("_", "-")}` : "s-other");
  replace(
    document.getElementById("status-chart"),
    barChart("Sandboxes by status", statuses.map(([k, v]) => ({ key: k, label: label(k), value: v, cls: cls(k) }))),
  );
  replace(document.getElementById("status-counts"), [["total", stats.total], ...statuses].map(([k, v]) => count(k, v, "stat")));

  const prefixes = Object.entries(stats.available_by_prefix || {}).sort(([a], [b]) => a.localeCompare(b));
  replace(
    document.getElementById("prefix-chart"),
    prefixes.length ? barChart("Available sandboxes by name prefix", prefixes.map(([k, v]) => ({ key: k, label: k, value: v, cls: "s-available" }))) : null,
  );
  replace(
    document.getElementById("prefix-counts"),
    prefixes.length ? prefixes.map(([k, v]) => count(k, v, "prefix")) : el("p", { class: "muted", text: "No sandbox is available." }),
  );
  renderSignals(stats.prefixes || []);
}

const REASONS = { below_low_water: "below its low-water mark", empties_too_soon: "runs out within the lead time" };

// forecast says when a prefix runs out at its recent rate: never without allocations.
export function forecast(s) {
  return s.minutes_to_empty === null || s.minutes_to_empty === undefined ? "never" : `${Math.round(s.minutes_to_empty)} min`;
}

// signalState names why a prefix is low, or says it is fine.
export function signalState(s) {
  return s.reasons.length ? `low: ${s.reasons.map((r) => REASONS[r] || r).join(", ")}` : "ok";
}

function renderSignals(signals) {
  const rows = signals.map((s) =>
    el(
      "tr",
      { "data-prefix": s.prefix, "data-low": String(s.reasons.length > 0), class: s.reasons.length ? "s-low" : null },
      el("th", { scope: "row", text: s.prefix }),
      el("td", { "data-field": "available", text: String(s.available) }),
      el("td", { "data-field": "low_water", text: String(s.low_water) }),
      el("td", { "data-field": "per_minute", text: s.per_minute.toFixed(2) }),
      el("td", { "data-field": "forecast", text: forecast(s) }),
      el("td", { "data-field": "state", text: signalState(s) }),
    ),
  );
  const body = document.querySelector("#prefix-signals tbody");
  replace(body, rows.length ? rows : el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No count yet: the pool-metrics job runs every 5 minutes." })));
}

function count(key, value, kind) {
  return el("div", { [`data-${kind}`]: key }, el("dt", { text: kind === "stat" ? label(key) : key }), el("dd", { text: String(value) }));
}

// drainNames names each drain by what it pauses, with its reason.
export function drainNames(drains) {
  return drains.map((d) => (d.prefix === "" ? "every allocation" : `prefix ${d.prefix}`) + (d.reason ? ` (${d.reason})` : ""));
}

// renderDrain shows the drains in force (stats.drains) and the switch for a drain of every
// allocation: on starts one with prefix "" (PUT /v1/admin/drain), off ends every drain.
export function renderDrain(stats, toggle) {
  const box = document.getElementById("drain");
  if (!Array.isArray(stats.drains)) {
    box.hidden = true;
    return;
  }
  const on = stats.drains.length > 0;
  box.hidden = false;
  box.dataset.drains = String(stats.drains.length);
  document.getElementById("drain-state").textContent = on
    ? `Drain is on: no new allocations for ${drainNames(stats.drains).join(", ")}. Replays still answer.`
    : "Drain is off: allocations are handed out.";
  const button = document.getElementById("drain-toggle");
  button.textContent = on ? "End every drain" : "Drain every allocation";
  button.setAttribute("aria-pressed", String(on));
  button.onclick = () => toggle(!on, button);
}
