/**
 * The rules in force drawn over a tile's frame: lines with their name and an arrow showing
 * the way `in` goes, zones as translucent polygons with their name. Like the boxes, an SVG
 * whose viewBox is the frame's pixel size; rule points (fractions) are scaled to it.
 * Also the rule being drawn (the editor's draft), on a layer of its own.
 */
import { inArrow, labelPoint, toPixels } from "./geometry.js";
import { labelFont } from "./overlay.js";

const SVG = "http://www.w3.org/2000/svg";

function element(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

const pointsAttr = (points) => points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");

function label(text, [x, y], font, className) {
  const node = element("text", { x: x.toFixed(1), y: y.toFixed(1), "font-size": font.toFixed(1), class: className });
  node.textContent = text;
  return node;
}

function lineGroup(line, frame, font) {
  const a = toPixels(line.points[0], frame);
  const b = toPixels(line.points[1], frame);
  const group = element("g", { class: "rule line" });
  group.dataset.rule = line.name;
  group.dataset.points = JSON.stringify(line.points);
  const title = element("title");
  const classes = line.classes ? line.classes.join(", ") : "every class";
  title.textContent = `line ${line.name} (${classes}); the arrow points the way "in" goes`;
  const arrow = inArrow(line.points[0], line.points[1], frame);
  group.append(
    title,
    element("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "stroke" }),
    element("polyline", { points: pointsAttr([arrow.tail, arrow.head]), class: "arrow" }),
    element("polygon", { points: pointsAttr([arrow.head, ...arrow.wings]), class: "arrow-head" }),
    label("in", [arrow.head[0] + font * 0.3, arrow.head[1] - font * 0.3], font * 0.9, "arrow-label"),
    label(line.name, [a[0] + font * 0.4, a[1] + font * 1.2], font, "name"),
  );
  group.dataset.arrow = JSON.stringify({ tail: arrow.tail, head: arrow.head });
  return group;
}

function zoneGroup(zone, frame, font) {
  const pixels = zone.polygon.map((p) => toPixels(p, frame));
  const group = element("g", { class: "rule zone" });
  group.dataset.rule = zone.name;
  group.dataset.points = JSON.stringify(zone.polygon);
  const title = element("title");
  const classes = zone.classes ? zone.classes.join(", ") : "every class";
  const loiter = zone.loiter_s ? `, loitering after ${zone.loiter_s} s` : "";
  title.textContent = `zone ${zone.name} (${classes}${loiter})`;
  const [cx, cy] = labelPoint(zone.polygon, frame);
  const text = label(zone.name, [cx, cy], font, "name");
  text.setAttribute("text-anchor", "middle");
  group.append(title, element("polygon", { points: pointsAttr(pixels), class: "area" }), text);
  return group;
}

/**
 * Replace the layer's drawing with `entry`'s lines and zones (the rules entry that applies
 * to the stream; null: none). Returns how many were drawn.
 */
export function drawRules(svg, frame, entry) {
  svg.setAttribute("viewBox", `0 0 ${frame.width} ${frame.height}`);
  const font = labelFont(svg, frame.width, frame.height, 13);
  const groups = [
    ...(entry?.zones || []).filter((z) => z.polygon?.length >= 3).map((z) => zoneGroup(z, frame, font)),
    ...(entry?.lines || []).filter((l) => l.points?.length === 2).map((l) => lineGroup(l, frame, font)),
  ];
  svg.replaceChildren(...groups);
  const names = groups.map((g) => g.dataset.rule);
  svg.setAttribute("aria-label", names.length ? `Rules drawn: ${names.join(", ")}` : "No lines or zones");
  return groups.length;
}

/**
 * The rule being drawn: its points so far (fractions) and, while the pointer is over the
 * picture, a rubber band to it. A line with both points shows its `in` arrow.
 */
export function drawDraft(svg, frame, { kind, points, cursor = null, closed = false }) {
  svg.setAttribute("viewBox", `0 0 ${frame.width} ${frame.height}`);
  const font = labelFont(svg, frame.width, frame.height, 13);
  const pixels = points.map((p) => toPixels(p, frame));
  const nodes = [];
  const path = cursor && !closed && !(kind === "line" && points.length >= 2)
    ? [...pixels, toPixels(cursor, frame)]
    : pixels;
  if (kind === "zone" && path.length >= 3) nodes.push(element("polygon", { points: pointsAttr(path), class: "area" }));
  else if (path.length >= 2) nodes.push(element("polyline", { points: pointsAttr(path), class: "stroke" }));
  if (kind === "line" && points.length === 2) {
    const arrow = inArrow(points[0], points[1], frame);
    nodes.push(
      element("polyline", { points: pointsAttr([arrow.tail, arrow.head]), class: "arrow" }),
      element("polygon", { points: pointsAttr([arrow.head, ...arrow.wings]), class: "arrow-head" }),
      label("in", [arrow.head[0] + font * 0.3, arrow.head[1] - font * 0.3], font * 0.9, "arrow-label"),
    );
  }
  pixels.forEach(([x, y], i) => {
    nodes.push(element("circle", { cx: x, cy: y, r: font * 0.35, class: i === 0 ? "vertex first" : "vertex" }));
  });
  svg.replaceChildren(...nodes);
}
