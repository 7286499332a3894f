// Small DOM helpers. Everything is built with DOM APIs (never innerHTML with data), and
// no element gets a style attribute: the console's CSP allows its stylesheet only.

// el makes an element: attrs sets attributes ("text" the text content, "on" a map of event
// listeners); children are nodes or strings (null and false are left out).
export function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "on") for (const [type, fn] of Object.entries(v)) node.addEventListener(type, fn);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// replace swaps a container's content. A refresh must not take the keyboard focus away:
// when the focused element carries data-focus-key, the new element with the same key gets
// the focus back.
export function replace(container, ...nodes) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.getAttribute("data-focus-key") : null;
  container.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined));
  if (key) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again && !again.disabled) again.focus();
  }
}

// focusAgain gives the focus back to button, or, when a refresh replaced it meanwhile
// (while a dialog was open), to the element that took its data-focus-key.
export function focusAgain(button) {
  const key = button.getAttribute("data-focus-key");
  const again = !button.isConnected && key ? document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) : null;
  (again ?? button).focus();
}

// time shows unix seconds as local date and time, with the ISO instant as a tooltip.
export function time(unix) {
  if (unix === null || unix === undefined) return el("span", { class: "muted", text: "—" });
  const d = new Date(unix * 1000);
  return el("time", { datetime: d.toISOString(), title: d.toISOString(), text: localTime(d) });
}

// instant shows an RFC 3339 string the same way.
export function instant(iso) {
  if (!iso) return el("span", { class: "muted", text: "—" });
  const d = new Date(iso);
  return el("time", { datetime: iso, title: iso, text: localTime(d) });
}

const pad = (n) => String(n).padStart(2, "0");

export function localTime(d) {
  return `${localDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// localDate is a Date's local day, YYYY-MM-DD.
export function localDate(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// localMinute is a Date's local hour and minute, HH:MM.
export const localMinute = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;

// table makes a data table: columns are {label, cell(row) → node or text, and field, the
// cell's data-field}; rowAttrs(row) gives each row's attributes. An empty list shows empty
// instead.
export function table(caption, columns, rows, empty = "None.", rowAttrs = (r) => ({ "data-id": r.sandbox_id || r.run_id || null })) {
  if (rows.length === 0) return el("p", { class: "muted empty", text: empty });
  return el(
    "table",
    {},
    el("caption", { class: "visually-hidden", text: caption }),
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c.label })))),
    el(
      "tbody",
      {},
      rows.map((r) => el("tr", rowAttrs(r), columns.map((c) => el("td", { "data-field": c.field }, c.cell(r))))),
    ),
  );
}

// wholeNumber reads a number field of a form: empty is 0 (unset); anything but a whole
// number throws, naming the field (what). Its bounds are the API's to check.
export function wholeNumber(input, what) {
  const v = input.value.trim();
  if (input.validity.badInput || (v !== "" && !Number.isInteger(Number(v)))) throw new Error(`${what} must be a whole number.`);
  return v === "" ? 0 : Number(v);
}

export const text = (v) => (v === null || v === undefined || v === "" ? el("span", { class: "muted", text: "—" }) : String(v));

// label turns an API key into words: pending_deletion → pending deletion.
export const label = (key) => key.replaceAll("_", " ");

// niosxaasKeys lists the niosxaas_* fields the sandboxes carry, when the API has them.
export function niosxaasKeys(sandboxes) {
  const keys = new Set();
  for (const s of sandboxes) for (const k of Object.keys(s)) if (k.startsWith("niosxaas_")) keys.add(k);
  return [...keys].sort();
}
