// Lab profiles (GET v1/admin/profiles): the terms of a lab's allocations (its
// X-Instruqt-Track-ID) and/or of a name prefix's — lab duration, extension step and cap,
// student limit, low-water mark and the 409 message (docs/architecture.md §5, "Lab
// profiles"). A term left at 0 or "" is unset: the next matching profile's applies, then
// the configuration's. The form creates or replaces the profile of its lab and prefix
// (PUT); Delete asks first (DELETE ?lab=&prefix=). The API checks the bounds; its
// VALIDATION_ERROR shows under the form.

import { call } from "./api.js";
import { el, focusAgain, replace, table, time, wholeNumber } from "./dom.js";
import { act, announce, confirm } from "./ui.js";

const $ = (id) => document.getElementById(id);

// TERMS are the profile's numeric terms, as the table and the form name them.
const TERMS = [
  { field: "lab_duration_minutes", label: "Lab duration (min)" },
  { field: "extension_minutes", label: "Extension step (min)" },
  { field: "max_duration_minutes", label: "Duration cap (min)" },
  { field: "student_limit", label: "Student limit" },
  { field: "low_water", label: "Low-water mark" },
];

const unset = (what) => el("span", { class: "muted", text: what });

// keyName names a profile by its key, as the operator reads it.
const keyName = (p) => [p.lab ? `lab ${p.lab}` : "", p.prefix ? `prefix ${p.prefix}` : ""].filter(Boolean).join(", ");

export function renderProfiles(answer) {
  const rows = answer.profiles;
  $("profiles-count").textContent = `(${rows.length})`;
  replace(
    $("profiles-table"),
    table(
      "Lab profiles",
      [
        { label: "Lab", field: "lab", cell: (p) => p.lab || unset("any lab") },
        { label: "Prefix", field: "prefix", cell: (p) => (p.prefix ? el("code", { text: p.prefix }) : unset("any prefix")) },
        ...TERMS.map((t) => ({ label: t.label, field: t.field, cell: (p) => (p[t.field] ? String(p[t.field]) : unset("default")) })),
        { label: "Message when none is left", field: "no_sandbox_message", cell: (p) => p.no_sandbox_message || unset("default") },
        { label: "Updated", field: "updated", cell: (p) => el("span", {}, time(p.updated_at), p.updated_by ? ` by ${p.updated_by}` : "") },
        { label: "Actions", cell: actions },
      ],
      rows,
      "No profile: every lab follows the configuration.",
      (p) => ({ "data-lab": p.lab, "data-prefix": p.prefix }),
    ),
  );
}

function actions(p) {
  const key = JSON.stringify([p.lab, p.prefix]);
  return el(
    "span",
    { class: "row-actions" },
    el("button", {
      type: "button",
      "data-focus-key": `edit-${key}`,
      "aria-label": `Edit the profile of ${keyName(p)}`,
      text: "Edit",
      on: { click: () => edit(p) },
    }),
    el("button", {
      type: "button",
      class: "danger",
      "data-focus-key": `delete-${key}`,
      "aria-label": `Delete the profile of ${keyName(p)}`,
      text: "Delete…",
      on: { click: (e) => remove(p, e.currentTarget) },
    }),
  );
}

let ui = null; // app.js's { failed, refresh }

// wireProfiles connects the form; failed and refresh are app.js's.
export function wireProfiles(app) {
  ui = app;
  const form = $("profile-form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(form.querySelector("button[type=submit]"), $("profile-error"), ui.failed, save);
  });
  $("profile-clear").addEventListener("click", () => {
    form.reset();
    replace($("profile-result"));
    form.elements.lab.focus();
  });
}

// edit puts the profile in the form: saving it again replaces it (lab and prefix are its
// key; changed, they make another profile).
function edit(p) {
  const f = $("profile-form").elements;
  f.lab.value = p.lab;
  f.prefix.value = p.prefix;
  for (const t of TERMS) f[t.field].value = p[t.field] ? String(p[t.field]) : "";
  f.no_sandbox_message.value = p.no_sandbox_message;
  f.lab.focus();
  announce(`The form holds the profile of ${keyName(p)}.`);
}

async function save() {
  replace($("profile-result"));
  const f = $("profile-form").elements;
  const body = { lab: f.lab.value.trim(), prefix: f.prefix.value.trim(), no_sandbox_message: f.no_sandbox_message.value };
  for (const t of TERMS) body[t.field] = wholeNumber(f[t.field], t.label);
  const saved = await call("PUT", "v1/admin/profiles", body);
  replace(
    $("profile-result"),
    el("span", {}, `Saved the profile of ${keyName(saved)}`, saved.updated_by ? ` (by ${saved.updated_by})` : "", "."),
  );
  await ui.refresh();
  announce(`Saved the profile of ${keyName(saved)}.`);
}

async function remove(p, button) {
  const question = `Delete the profile of ${keyName(p)}? New allocations then follow the next matching profile, or the configuration; running labs keep the terms they were given.`;
  if (!(await confirm(question, "Delete the profile"))) {
    focusAgain(button);
    return;
  }
  await act(button, $("profile-error"), ui.failed, async () => {
    replace($("profile-result"));
    const key = Object.entries({ lab: p.lab, prefix: p.prefix }).filter(([, v]) => v !== "");
    await call("DELETE", `v1/admin/profiles?${new URLSearchParams(key)}`);
    replace($("profile-result"), `Deleted the profile of ${keyName(p)}.`);
    await ui.refresh();
    announce(`Deleted the profile of ${keyName(p)}.`);
  });
}
