/**
 * What is on screen, kept in the URL's fragment so a view can be bookmarked and shared:
 * #layout=4&streams=cam-1,cam-2&classes=person,car
 */

export const LAYOUTS = [1, 4, 9];
const STREAM_ID = /^[A-Za-z0-9._-]{1,128}$/; // the gateway's rule (pipeline/protocol/stream_ids.py)

export function isStreamId(value) {
  return STREAM_ID.test(value);
}

function list(value) {
  return (value || "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** Parse a fragment; unknown or malformed parts are ignored, not fatal. */
export function parseViewState(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const layout = Number(params.get("layout"));
  const streams = [...new Set(list(params.get("streams")).filter(isStreamId))].slice(0, 9);
  return {
    layout: LAYOUTS.includes(layout) ? layout : null,
    streams,
    classes: [...new Set(list(params.get("classes")))],
  };
}

export function formatViewState({ layout, streams, classes }) {
  const params = new URLSearchParams();
  if (layout) params.set("layout", String(layout));
  if (streams.length) params.set("streams", streams.join(","));
  if (classes.length) params.set("classes", classes.join(","));
  return "#" + params.toString().replaceAll("%2C", ",");
}

/** The smallest layout that fits `count` tiles. */
export function layoutFor(count) {
  return LAYOUTS.find((size) => size >= count) || LAYOUTS[LAYOUTS.length - 1];
}
