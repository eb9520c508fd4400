/**
 * Rule geometry on a tile. Rule points are fractions of the frame's width and height (the
 * rules document's unit); the tile's SVG layers use the frame's own pixels as their viewBox,
 * so a point is drawn at (x·width, y·height) and a click is read back the other way.
 *
 * A line's `in` direction (README, Analytics): an anchor moving from the side where
 * cross(B−A, p−A) > 0 to the side where it is < 0, in image coordinates (y down); for a line
 * drawn top to bottom, left to right. The arrow is worked out in pixels, where the side of a
 * point is the same as in fractions (scaling x and y by positive factors keeps the sign).
 */

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

/** A point in fractions of the frame → frame pixels. */
export function toPixels([x, y], { width, height }) {
  return [x * width, y * height];
}

/** Frame pixels → fractions of the frame, clamped to the frame and rounded to 4 decimals. */
export function toFraction([px, py], { width, height }) {
  const round = (v) => Math.round(clamp(v, 0, 1) * 10000) / 10000;
  return [round(px / width), round(py / height)];
}

/** cross(B−A, p−A): > 0 on the side `in` starts from, < 0 on the side it goes to. */
export function cross(a, b, p) {
  return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
}

/**
 * The arrow drawn across a line (points in fractions), pointing the way `in` goes, in frame
 * pixels: from `tail` (on the side in starts from) through the line's midpoint to `head`,
 * `length` pixels long (a fixed share of the frame's smaller side by default), and the two
 * points of its head.
 */
export function inArrow(a, b, frame, length = Math.min(frame.width, frame.height) * 0.12) {
  const [ax, ay] = toPixels(a, frame);
  const [bx, by] = toPixels(b, frame);
  const dx = bx - ax;
  const dy = by - ay;
  const norm = Math.hypot(dx, dy) || 1;
  // (dy, −dx) has cross(d, n) = −|d|² < 0: it points to the side `in` goes to.
  const nx = dy / norm;
  const ny = -dx / norm;
  const mid = [(ax + bx) / 2, (ay + by) / 2];
  const half = length / 2;
  const tail = [mid[0] - nx * half, mid[1] - ny * half];
  const head = [mid[0] + nx * half, mid[1] + ny * half];
  const barb = length * 0.3;
  const back = [head[0] - nx * barb, head[1] - ny * barb];
  const wings = [
    [back[0] + (dx / norm) * barb * 0.6, back[1] + (dy / norm) * barb * 0.6],
    [back[0] - (dx / norm) * barb * 0.6, back[1] - (dy / norm) * barb * 0.6],
  ];
  return { tail, head, mid, wings };
}

/** Where a zone's name goes: the mean of its corners (in pixels). */
export function labelPoint(polygon, frame) {
  const pixels = polygon.map((p) => toPixels(p, frame));
  const sum = pixels.reduce((acc, [x, y]) => [acc[0] + x, acc[1] + y], [0, 0]);
  return [sum[0] / pixels.length, sum[1] / pixels.length];
}

/** Whether two points (pixels) are within `radius` of each other. */
export function near(p, q, radius) {
  return Math.hypot(p[0] - q[0], p[1] - q[1]) <= radius;
}

/** "0.5,0 0.5,1" → [[0.5, 0], [0.5, 1]]; null when any pair is not two numbers in 0..1. */
export function parsePoints(text) {
  const pairs = text.trim().split(/\s+/).filter(Boolean);
  const points = [];
  for (const pair of pairs) {
    const parts = pair.split(",");
    if (parts.length !== 2) return null;
    const [x, y] = parts.map(Number);
    if (!Number.isFinite(x) || !Number.isFinite(y) || x < 0 || x > 1 || y < 0 || y > 1) return null;
    points.push([x, y]);
  }
  return points;
}

export function formatPoints(points) {
  return points.map(([x, y]) => `${x},${y}`).join(" ");
}
