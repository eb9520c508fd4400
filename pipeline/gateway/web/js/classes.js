/**
 * The class filter: which labels are drawn and listed. Empty selection = every class.
 * Also counts the labels seen, so the filter offers what actually shows up.
 */
export class ClassFilter {
  constructor(selected = []) {
    this.selected = new Set(selected);
    this.seen = new Map();
  }

  allows(label) {
    return this.selected.size === 0 || this.selected.has(label);
  }

  toggle(label) {
    if (this.selected.has(label)) this.selected.delete(label);
    else this.selected.add(label);
  }

  clear() {
    this.selected.clear();
  }

  /** Count the objects of one detections message. */
  count(objects) {
    for (const o of objects) this.seen.set(o.label, (this.seen.get(o.label) || 0) + 1);
  }

  /** Labels seen or selected, most frequent first, then by name. */
  labels() {
    const all = new Map(this.seen);
    for (const label of this.selected) if (!all.has(label)) all.set(label, 0);
    return [...all.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([label, count]) => ({ label, count, selected: this.selected.has(label) }));
  }

  /** The objects a person asked to see. */
  filter(objects) {
    return this.selected.size === 0 ? objects : objects.filter((o) => this.selected.has(o.label));
  }
}
