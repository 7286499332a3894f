// Reservations (GET v1/admin/reservations) as a calendar: grouped by the local day they
// start, in time order, each with its window, lab, prefix, seats, set-aside, state and
// the reservations job's last coverage verdict; a scheduled reservation the pool cannot
// cover is marked short with its shortfall, and named above the calendar
// (docs/architecture.md §5, "Reservations"). The form checks capacity (GET
// v1/admin/capacity, the dry run) and reserves (POST): one the pool cannot cover is
// refused with the numbers (409 RESERVATION_UNCOVERABLE) and may then be forced after a
// confirmation. Cancel asks first (DELETE v1/admin/reservations/{id}).

import { ApiError, call } from "./api.js";
import { el, focusAgain, label, localDate, localMinute, localTime, replace, table, text, time, wholeNumber } from "./dom.js";
import { act, announce, confirm } from "./ui.js";

const $ = (id) => document.getElementById(id);

const isShort = (r) => r.state === "scheduled" && r.coverage === "short";
const prefixName = (prefix) => (prefix ? `prefix ${prefix}` : "any prefix");
const describeReservation = (r) => `${r.seats} seats of ${prefixName(r.prefix)} for lab ${r.lab}, ${localTime(new Date(r.starts_at * 1000))}`;

export function renderReservations(answer) {
  const all = [...answer.reservations].sort((a, b) => a.starts_at - b.starts_at || a.ends_at - b.ends_at || a.id.localeCompare(b.id));
  const short = all.filter(isShort);
  $("reservations-count").textContent = `(${all.length}${short.length ? `, ${short.length} short` : ""})`;
  const box = $("reservations-short");
  box.hidden = short.length === 0;
  replace(
    box,
    short.length
      ? el(
          "p",
          {},
          el("strong", { text: `${short.length} scheduled reservation${short.length === 1 ? "" : "s"} cannot be covered: ` }),
          short.map((r) => `${describeReservation(r)}, short by ${r.shortfall}`).join("; "),
          ". Add accounts to the CSP tenant and run sync, or cancel and reserve fewer seats.",
        )
      : null,
  );
  const days = new Map();
  for (const r of all) {
    const day = localDate(new Date(r.starts_at * 1000));
    days.set(day, [...(days.get(day) ?? []), r]);
  }
  replace($("reservation-calendar"), days.size ? [...days].map(([day, rows]) => dayOf(day, rows)) : el("p", { class: "muted empty", text: "No reservation." }));
}

function dayOf(day, rows) {
  const weekday = new Date(rows[0].starts_at * 1000).toLocaleDateString("en", { weekday: "long" });
  return el(
    "div",
    { class: "day", "data-day": day },
    el("h3", { text: `${weekday} ${day}` }),
    table(`Reservations starting on ${weekday} ${day}`, columns, rows, "", (r) => ({
      "data-id": r.id,
      "data-state": r.state,
      "data-coverage": r.coverage,
      class: isShort(r) ? "short" : null,
    })),
  );
}

const columns = [
  { label: "Window", field: "window", cell: windowOf },
  { label: "Lab", field: "lab", cell: (r) => (r.client ? `${r.lab} (client ${r.client})` : r.lab) },
  { label: "Prefix", field: "prefix", cell: (r) => (r.prefix ? el("code", { text: r.prefix }) : el("span", { class: "muted", text: "any prefix" })) },
  { label: "Seats", field: "seats", cell: (r) => String(r.seats) },
  { label: "Set aside (claimed included)", field: "set_aside", cell: (r) => String(r.set_aside) },
  { label: "Overflow", field: "overflow", cell: (r) => (r.overflow ? "to the general pool" : "none") },
  { label: "State", field: "state", cell: (r) => label(r.state) },
  { label: "Coverage", field: "coverage", cell: coverageOf },
  { label: "ID", field: "id", cell: (r) => el("code", { text: r.id }) },
  { label: "Action", cell: (r) => (r.state === "scheduled" ? cancelButton(r) : text(null)) },
];

// windowOf shows the window in local time (the end's day too when it differs) and the
// lead time, from which seats are set aside.
function windowOf(r) {
  const start = new Date(r.starts_at * 1000);
  const end = new Date(r.ends_at * 1000);
  const endText = localDate(end) === localDate(start) ? localMinute(end) : `${localDate(end)} ${localMinute(end)}`;
  return el(
    "span",
    {},
    at(start, localMinute(start)),
    " – ",
    at(end, endText),
    r.lead_minutes ? el("span", { class: "muted", text: ` · lead ${r.lead_minutes} min` }) : "",
  );
}

const at = (d, shown) => el("time", { datetime: d.toISOString(), title: d.toISOString(), text: shown });

// coverageOf is the reservations job's last verdict; it checks from a day before the lead
// time, so a later reservation has none yet.
function coverageOf(r) {
  if (r.coverage === "short") return el("strong", { class: "badge c-short", text: `short by ${r.shortfall}` });
  if (r.coverage === "ok") return el("span", { class: "badge c-ok", text: "ok" });
  return el("span", { class: "muted", text: "not checked yet" });
}

function cancelButton(r) {
  return el("button", {
    type: "button",
    class: "danger",
    "data-focus-key": `cancel-${r.id}`,
    "aria-label": `Cancel reservation ${r.id} (${describeReservation(r)})`,
    text: "Cancel…",
    on: { click: (e) => cancel(r, e.currentTarget) },
  });
}

let ui = null; // app.js's { failed, refresh }
// refused is the body of the reservation last refused as uncoverable: what "Reserve
// anyway" creates, until the form changes.
let refused = null;

// wireReservations connects the form; failed and refresh are app.js's.
export function wireReservations(app) {
  ui = app;
  const form = $("reservation-form");
  const f = form.elements;
  // A starting point: tomorrow 09:00 to 12:00, local time.
  const tomorrow = new Date();
  tomorrow.setDate(tomorrow.getDate() + 1);
  f.starts_at.value = `${localDate(tomorrow)}T09:00`;
  f.ends_at.value = `${localDate(tomorrow)}T12:00`;
  form.addEventListener("input", () => offerForce(null));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(form.querySelector("button[type=submit]"), $("reservation-error"), ui.failed, () => reserve(readForm(), false));
  });
  $("capacity-check").addEventListener("click", (e) => act(e.currentTarget, $("reservation-error"), ui.failed, checkCapacity));
  $("reserve-force").addEventListener("click", (e) => force(e.currentTarget));
}

// readForm is the reservation the form describes, or throws naming what is not a number
// or an instant; the API checks the rest.
function readForm() {
  const f = $("reservation-form").elements;
  return {
    lab: f.lab.value.trim(),
    client: f.client.value.trim(),
    prefix: f.prefix.value.trim(),
    seats: wholeNumber(f.seats, "Seats"),
    starts_at: instant(f.starts_at, "The start"),
    ends_at: instant(f.ends_at, "The end"),
    lead_minutes: wholeNumber(f.lead_minutes, "The lead time"),
    overflow: f.overflow.checked,
  };
}

// instant reads a datetime-local field (local time) as unix seconds.
function instant(input, what) {
  const ms = Date.parse(input.value);
  if (!input.value || Number.isNaN(ms)) throw new Error(`${what} of the window must be a date and time.`);
  return Math.floor(ms / 1000);
}

async function checkCapacity() {
  replace($("reservation-result"));
  const r = readForm();
  const q = new URLSearchParams({ prefix: r.prefix, seats: r.seats, starts_at: r.starts_at, ends_at: r.ends_at, lead_minutes: r.lead_minutes });
  const c = await call("GET", `v1/admin/capacity?${q}`);
  replace($("reservation-result"), capacityOf("Dry run", c));
}

// NUMBERS are a capacity check's counts, as the operator reads them.
const NUMBERS = [
  ["available", "Available in the general pool"],
  ["promised_to_others", "Promised to other reservations"],
  ["held_by_others", "Held by other reservations"],
  ["pending_deletion", "Pending deletion (covers nothing)"],
  ["shortfall", "Shortfall"],
];

function capacityOf(heading, c) {
  return el(
    "div",
    { class: "capacity", "data-coverable": String(c.coverable) },
    el(
      "p",
      {},
      el("strong", { text: `${heading}: ` }),
      `${c.seats} seats of ${prefixName(c.prefix)} from `,
      time(c.at),
      ": ",
      c.coverable ? "coverable" : el("strong", { class: "alarm", text: `short by ${c.shortfall}` }),
      ".",
    ),
    el(
      "dl",
      { class: "counts" },
      NUMBERS.map(([k, name]) => el("div", { "data-field": k }, el("dt", { text: name }), el("dd", { text: String(c[k]) }))),
    ),
  );
}

// reserve creates the reservation body; without force, one the pool cannot cover is
// refused with the numbers, and "Reserve anyway" is offered for exactly that body.
async function reserve(body, forced) {
  replace($("reservation-result"));
  let created;
  try {
    created = await call("POST", `v1/admin/reservations${forced ? "?force=true" : ""}`, body);
  } catch (e) {
    if (e instanceof ApiError && e.code === "RESERVATION_UNCOVERABLE") offerForce({ body, message: e.message });
    throw e;
  }
  offerForce(null);
  const r = created.reservation;
  replace(
    $("reservation-result"),
    el("p", { "data-created": r.id }, `Reserved ${describeReservation(r)}${forced ? ", forced past its capacity check" : ""}: reservation `, el("code", { text: r.id }), "."),
    capacityOf("Its capacity check", created.capacity),
  );
  await ui.refresh();
  announce(`Reserved ${describeReservation(r)}: reservation ${r.id}.`);
}

function offerForce(what) {
  refused = what;
  $("force-box").hidden = what === null;
}

// force creates the refused reservation once the operator has confirmed it.
async function force(button) {
  const what = refused;
  if (what === null) return;
  const question = `Create the reservation anyway? ${what.message}. The reservations job raises reservation_uncoverable until it is covered.`;
  if (!(await confirm(question, "Reserve anyway"))) {
    button.focus();
    return;
  }
  await act(button, $("reservation-error"), ui.failed, () => reserve(what.body, true));
}

async function cancel(r, button) {
  const question = `Cancel reservation ${r.id}: ${describeReservation(r)}? The reservations job returns what is set aside to the general pool within a minute.`;
  if (!(await confirm(question, "Cancel the reservation", "Keep it"))) {
    focusAgain(button);
    return;
  }
  await act(button, $("reservation-error"), ui.failed, async () => {
    replace($("reservation-result"));
    await call("DELETE", `v1/admin/reservations/${encodeURIComponent(r.id)}`);
    replace($("reservation-result"), el("p", {}, `Cancelled reservation `, el("code", { text: r.id }), `: ${describeReservation(r)}.`));
    await ui.refresh();
    announce(`Reservation ${r.id} is cancelled; its set-aside returns within a minute.`);
  });
}
