/**
 * Boxes as SVG over the frame. The SVG's viewBox is the frame's own pixel size, so boxes
 * in original pixels (as the gateway sends them) land where they belong at any tile size,
 * and each box is a real element a screen reader (and a test) can find.
 */

const SVG = "http://www.w3.org/2000/svg";

/** A stable, well-spread colour per class id. */
export function colorFor(classId) {
  return `hsl(${(classId * 67) % 360} 90% 60%)`;
}

/** "person #12" for a tracked object (analytics running, track confirmed), else "person". */
export function nameOf(o) {
  return o.track_id >= 0 ? `${o.label} #${o.track_id}` : o.label;
}

export function describe(objects) {
  if (!objects.length) return "no objects";
  const parts = objects.map((o) => `${nameOf(o)} ${Math.round(o.score * 100)}%`);
  return `${objects.length} object${objects.length === 1 ? "" : "s"}: ${parts.join(", ")}`;
}

function element(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

/** Label font size in frame pixels: about `px` screen pixels at the tile's current size. */
export function labelFont(svg, width, height, px = 12) {
  const scale = Math.min(svg.clientWidth / width, svg.clientHeight / height);
  const font = scale > 0 ? px / scale : Math.min(width, height) / 30;
  return Math.min(Math.max(font, width / 80), width / 12);
}

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Where each label goes: above its box's top-left corner, else just inside it, else below
 * the box, choosing the first spot no better-scoring label took (boxes of one object found
 * as two classes, a dog and a "cat", would otherwise hide each other's label).
 */
export function placeLabels(boxes, width, height, font) {
  const placed = [];
  const order = boxes.map((_, i) => i).sort((a, b) => boxes[b].score - boxes[a].score);
  const spots = new Array(boxes.length);
  for (const i of order) {
    const { left, top, bottom, text } = boxes[i];
    const w = text.length * font * 0.62 + font * 0.5;
    const h = font * 1.3;
    const x = clamp(left, 0, Math.max(0, width - w));
    const candidates = [top - h, top, top + h, bottom, bottom - h].map((y) => ({
      x, y: clamp(y, 0, Math.max(0, height - h)), w, h,
    }));
    const spot = candidates.find((c) => !placed.some((p) => overlaps(c, p))) || candidates[0];
    placed.push(spot);
    spots[i] = spot;
  }
  return spots;
}

/**
 * Replace the SVG's boxes. `dashed` marks boxes that belong to an earlier frame. An object
 * with a `track_id` (from the analytics' tracks) is labelled with it: "person #12 87%".
 * @returns {number} how many boxes were drawn
 */
export function drawBoxes(svg, { width, height }, objects, { dashed = false } = {}) {
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const font = labelFont(svg, width, height);
  const boxes = objects.map((o) => {
    const [x1, y1, x2, y2] = o.box;
    const left = clamp(x1, 0, width);
    const top = clamp(y1, 0, height);
    const right = clamp(x2, 0, width);
    const bottom = clamp(y2, 0, height);
    return { left, top, right, bottom, text: `${nameOf(o)} ${Math.round(o.score * 100)}%`, score: o.score };
  });
  const spots = placeLabels(boxes, width, height, font);
  objects.forEach((o, i) => {
    const { left, top, right, bottom, text } = boxes[i];
    const spot = spots[i];
    const color = colorFor(o.class_id);
    const group = element("g", { class: dashed ? "box earlier" : "box" });
    group.dataset.label = o.label;
    group.dataset.score = String(o.score);
    group.dataset.box = o.box.join(",");
    if (o.track_id !== undefined) group.dataset.track = String(o.track_id);
    const title = element("title", {});
    title.textContent = `${nameOf(o)} ${(o.score * 100).toFixed(1)}%`;
    group.append(
      title,
      element("rect", {
        x: left, y: top, width: Math.max(0, right - left), height: Math.max(0, bottom - top),
        stroke: color, class: "outline",
      }),
      element("rect", { x: spot.x, y: spot.y, width: spot.w, height: spot.h, fill: color, class: "tag" }),
    );
    const label = element("text", { x: spot.x + font * 0.25, y: spot.y + font * 1.02, "font-size": font });
    label.textContent = text;
    group.append(label);
    svg.append(group);
  });
  svg.setAttribute("aria-label", describe(objects));
  return objects.length;
}
