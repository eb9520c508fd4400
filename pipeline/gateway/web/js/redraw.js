/**
 * Redrawn at most once per animation frame, however often something changes: the lists of
 * the viewer take updates as fast as the sockets bring them and draw the latest state.
 */
export function oncePerFrame(draw) {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      draw();
    });
  };
}
