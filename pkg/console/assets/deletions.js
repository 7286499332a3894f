// The sandboxes that need an operator's eye: pending deletions (oldest first), the ones
// cleanup gave up on (with a retry each), and the stale ones.

import { el, label, niosxaasKeys, replace, table, text, time } from "./dom.js";

const id = (s) => el("code", { text: s.sandbox_id });

// niosxaasColumns: one column per niosxaas_* field, when the API has them.
const niosxaasColumns = (rows) => niosxaasKeys(rows).map((k) => ({ label: label(k).replace("niosxaas", "NIOSXaaS"), cell: (s) => text(s[k]) }));

export function renderPending(list) {
  const rows = [...list.sandboxes].sort((a, b) => (a.deletion_requested_at ?? 0) - (b.deletion_requested_at ?? 0));
  setCount("pending-count", list);
  replace(
    document.getElementById("pending-table"),
    table(
      "Pending deletions, oldest first",
      [
        { label: "Sandbox", cell: id },
        { label: "Name", cell: (s) => s.name },
        { label: "Requested", cell: (s) => time(s.deletion_requested_at) },
        { label: "Attempts", cell: (s) => String(s.attempts) },
        { label: "Next attempt", cell: (s) => time(s.next_attempt_at) },
        { label: "Last error", cell: (s) => text(s.last_error) },
        ...niosxaasColumns(rows),
      ],
      rows,
      "No deletion is pending.",
    ),
  );
}

export function renderFailed(list, retry) {
  setCount("failed-count", list);
  const rows = list.sandboxes;
  replace(
    document.getElementById("failed-table"),
    table(
      "Sandboxes whose deletion failed",
      [
        { label: "Sandbox", cell: id },
        { label: "Name", cell: (s) => s.name },
        { label: "Requested", cell: (s) => time(s.deletion_requested_at) },
        { label: "Attempts", cell: (s) => String(s.attempts) },
        { label: "Last error", cell: (s) => text(s.last_error) },
        ...niosxaasColumns(rows),
        {
          label: "Action",
          cell: (s) =>
            el("button", {
              type: "button",
              class: "retry",
              "data-focus-key": `retry-${s.sandbox_id}`,
              "aria-label": `Retry the deletion of sandbox ${s.sandbox_id} (${s.name})`,
              text: "Retry deletion",
              on: { click: (e) => retry(s, e.currentTarget) },
            }),
        },
      ],
      rows,
      "No deletion has failed.",
    ),
  );
}

export function renderStale(list) {
  setCount("stale-count", list);
  replace(
    document.getElementById("stale-table"),
    table(
      "Stale sandboxes",
      [
        { label: "Sandbox", cell: id },
        { label: "Name", cell: (s) => s.name },
        { label: "Stale since", cell: (s) => time(s.stale_since) },
        { label: "Missed syncs", cell: (s) => String(s.missed_syncs) },
        { label: "Last synced", cell: (s) => time(s.last_synced) },
        { label: "Student", cell: (s) => text(s.allocated_to_track) },
      ],
      list.sandboxes,
      "No sandbox is stale.",
    ),
  );
}

// staleFor counts the stale sandboxes of list stale for at least hours.
export function staleFor(list, hours, nowSeconds) {
  return list.sandboxes.filter((s) => s.stale_since !== null && s.stale_since <= nowSeconds - hours * 3600).length;
}

function setCount(elementId, list) {
  document.getElementById(elementId).textContent = `(${list.sandboxes.length}${list.complete ? "" : "+"})`;
}
