// A small bar chart of instances started and failed per time bucket, drawn as SVG nodes.

import { fmtTime, s } from "./dom.js";

export function activityChart(activity, { width = 240, height = 44 } = {}) {
  const buckets = activity.buckets || [];
  const max = Math.max(1, ...buckets.map((b) => b.started));
  const step = width / Math.max(1, buckets.length);
  const bar = Math.max(1, step - 1.5);
  const total = buckets.reduce((n, b) => n + b.started, 0);
  const failed = buckets.reduce((n, b) => n + b.failed, 0);
  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height + 2}`,
    width,
    height: height + 2,
    role: "img",
    "aria-label": `${total} started, ${failed} failed in the last ${Math.round((activity.bucket_seconds * buckets.length) / 3600)} h`,
  });
  svg.appendChild(s("line", { class: "chart-base", x1: 0, x2: width, y1: height + 0.5, y2: height + 0.5 }));
  buckets.forEach((b, i) => {
    const x = i * step;
    const group = s("g", { class: "chart-bucket" });
    group.appendChild(
      s("title", null, `${fmtTime(b.start)}: ${b.started} started, ${b.failed} failed`),
    );
    // A transparent full-height hit area so the tooltip works on empty buckets too.
    group.appendChild(s("rect", { class: "chart-hit", x, y: 0, width: step, height }));
    if (b.started) {
      const hStarted = Math.max(2, (b.started / max) * height);
      group.appendChild(s("rect", { class: "chart-started", x, y: height - hStarted, width: bar, height: hStarted }));
    }
    if (b.failed) {
      const hFailed = Math.max(2, (b.failed / max) * height);
      group.appendChild(s("rect", { class: "chart-failed", x, y: height - hFailed, width: bar, height: hFailed }));
    }
    svg.appendChild(group);
  });
  return svg;
}
