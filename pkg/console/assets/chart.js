// A horizontal bar chart in plain SVG. The numbers are also in the page as text (the
// lists next to the charts), so the chart is one image with a summary for screen readers.

import { svg } from "./dom.js";

const ROW = 22;
const LABEL = 118;
const WIDTH = 300;
const BAR_MAX = WIDTH - LABEL - 40;

let charts = 0;

// barChart draws bars, each {key, label, value, cls}: the bar gets the class cls.
export function barChart(title, bars) {
  const id = `chart-${++charts}`;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const height = Math.max(1, bars.length) * ROW + 4;
  const summary = bars.map((b) => `${b.label} ${b.value}`).join(", ") || "nothing to show";
  return svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`, class: "bars", preserveAspectRatio: "xMinYMin meet" },
    svg("title", { id: `${id}-t`, text: title }),
    svg("desc", { id: `${id}-d`, text: summary }),
    bars.map((b, i) => {
      const y = i * ROW + 2;
      const w = b.value === 0 ? 0 : Math.max(2, Math.round((b.value / max) * BAR_MAX));
      return svg(
        "g",
        { "data-key": b.key },
        svg("text", { x: LABEL - 8, y: y + ROW / 2 + 4, "text-anchor": "end", class: "bar-label", text: b.label }),
        svg("rect", { x: LABEL, y: y + 3, width: w, height: ROW - 8, rx: 3, class: `bar ${b.cls}` }),
        svg("text", { x: LABEL + w + 6, y: y + ROW / 2 + 4, class: "bar-value", text: String(b.value) }),
      );
    }),
  );
}
