// What every view shares of the page: the screen-reader announcements, an error as the
// operator reads it, the confirmation dialog, and running an action from a form.

import { ApiError } from "./api.js";
import { el, replace } from "./dom.js";

const $ = (id) => document.getElementById(id);

export function announce(message) {
  $("announce").textContent = message;
}

// describe is an error as the operator reads it: the envelope's message, its code and
// the request ID to find it in the logs.
export function describe(e) {
  if (!(e instanceof ApiError)) return el("p", {}, el("strong", { text: e.message }));
  return el(
    "p",
    { "data-code": e.code },
    el("strong", { text: e.message }),
    e.code ? ` (${e.code})` : "",
    e.requestId ? el("span", {}, " — request ID ", el("code", { class: "request-id", text: e.requestId })) : "",
  );
}

// confirm asks in a modal dialog whether to do action; Escape or the other button (keep)
// answers no.
export function confirm(message, action, keep = "Cancel") {
  const dialog = $("confirm");
  $("confirm-text").textContent = message;
  $("confirm-yes").textContent = action;
  $("confirm-no").textContent = keep;
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

// act runs an operator's action started by button, which stays disabled meanwhile: box
// (the form's error box) is emptied first, and a failure goes to failed (app.js's: it
// shows the error in box, or ends the session on a refused token).
export async function act(button, box, failed, action) {
  button.disabled = true;
  box.hidden = true;
  replace(box);
  try {
    await action();
  } catch (e) {
    failed(e, box);
  } finally {
    button.disabled = false;
  }
}
