// Search by sandbox ID (GET v1/admin/sandboxes/{id}: a live sandbox, or a deleted one's
// history), by name prefix (the listing's prefix filter), or by student (the listing has no
// owner filter: the whole live pool is read and matched exactly).

import { call, listAll, sandboxPath } from "./api.js";
import { el, instant, label, replace, table, text, time } from "./dom.js";

const ID_SYNTAX = /^[A-Za-z0-9_-]{1,64}$/;

export async function search(by, q) {
  const results = document.getElementById("search-results");
  const detail = document.getElementById("sandbox-detail");
  replace(detail);
  if (by === "id") {
    if (!ID_SYNTAX.test(q)) {
      replace(results, el("p", { class: "error", text: "A sandbox ID is 1-64 characters of A-Z a-z 0-9 - _." }));
      return;
    }
    replace(results);
    await show(q);
    return;
  }
  const list = by === "name" ? await listAll({ prefix: q }) : await listAll();
  const found = by === "name" ? list.sandboxes : list.sandboxes.filter((s) => s.allocated_to_track === q);
  const what = by === "name" ? `named ${q}…` : `of student ${q}`;
  replace(
    results,
    el("p", { text: `${found.length} sandbox${found.length === 1 ? "" : "es"} ${what}${list.complete ? "" : " (the pool is larger than the console reads; narrow the search)"}.` }),
    table(
      `Sandboxes ${what}`,
      [
        { label: "Sandbox", cell: (s) => el("code", { text: s.sandbox_id }) },
        { label: "Name", cell: (s) => s.name },
        { label: "Status", cell: (s) => label(s.status) },
        { label: "Student", cell: (s) => text(s.allocated_to_track) },
        {
          label: "History",
          cell: (s) =>
            el("button", {
              type: "button",
              "data-focus-key": `show-${s.sandbox_id}`,
              "aria-label": `Show sandbox ${s.sandbox_id} and its history`,
              text: "Show",
              on: { click: () => show(s.sandbox_id).catch(searchFailed) },
            }),
        },
      ],
      found,
      "No sandbox matches.",
    ),
  );
}

let searchFailed = () => {};
export function onSearchError(fn) {
  searchFailed = fn;
}

// show loads one sandbox and draws it with its history as a timeline, oldest first.
export async function show(id) {
  const d = await call("GET", sandboxPath(id));
  const heading = el("h3", { tabindex: "-1", text: `Sandbox ${id}` });
  const steps = [...d.history].reverse();
  replace(
    document.getElementById("sandbox-detail"),
    heading,
    d.sandbox ? fields(d.sandbox) : el("p", { text: "Deleted: only its history is left, until the history expires." }),
    el("h4", { id: "timeline-title", text: "History, oldest first" }),
    steps.length
      ? el("ol", { class: "timeline", "aria-labelledby": "timeline-title" }, steps.map(step))
      : el("p", { class: "muted", text: "No history recorded." }),
  );
  heading.focus();
}

const TIMES = new Set(["allocated_at", "expires_at", "deletion_requested_at", "next_attempt_at", "stale_since", "last_synced", "created_at", "updated_at"]);

function fields(s) {
  return el(
    "dl",
    { class: "fields" },
    Object.entries(s).map(([k, v]) =>
      el("div", { "data-field": k }, el("dt", { text: label(k).replace("niosxaas", "NIOSXaaS") }), el("dd", {}, TIMES.has(k) ? time(v) : text(v))),
    ),
  );
}

function step(h) {
  const to = h.to ?? "?";
  return el(
    "li",
    { "data-to": to },
    el("div", { class: "when" }, instant(h.at)),
    el(
      "div",
      { class: "what" },
      el("strong", { text: h.from ? `${label(h.from)} → ${label(to)}` : `created as ${label(to)}` }),
      h.reason ? ` — ${h.reason}` : "",
    ),
    el(
      "div",
      { class: "who muted" },
      [h.actor_kind, h.actor].filter(Boolean).join(" ") || "unknown actor",
      h.request_id ? el("span", {}, " · request ", el("code", { text: h.request_id })) : "",
    ),
  );
}
