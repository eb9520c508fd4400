/**
 * Drawing a rule on a tile and saving it: a line (two clicks) or a zone (clicks, then close
 * it on its first point, with "Close zone" or Enter), a name, the classes it counts and, for
 * a zone, when loitering starts; saved into the rules document through WS /v1/rules (the
 * admin scope), after which the rules in force are read again and the tile draws it.
 * The points can also be typed ("x,y x,y" in fractions), so the keyboard can do it all.
 */
import { adminProblem } from "./auth.js";
import { drawDraft } from "./rulelayer.js";
import { formatPoints, near, parsePoints, toFraction, toPixels } from "./geometry.js";
import { globMatches, ruleNames, rulesFor, saveRules, toYaml, withRule } from "./rules.js";

const CLOSE_RADIUS_PX = 12; // a click this close (on screen) to a zone's first point closes it

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function field(labelText, input, className = "") {
  const label = make("label", className);
  label.append(make("span", "", labelText), input);
  return label;
}

/** A name not used yet in the entry: line-1, line-2, ... */
export function freshName(kind, entry) {
  const used = new Set(ruleNames(entry));
  for (let i = 1; ; i += 1) if (!used.has(`${kind}-${i}`)) return `${kind}-${i}`;
}

/** "person, car" → ["person", "car"]; "" → null (every class). */
export function parseClasses(text) {
  const classes = [...new Set(text.split(",").map((c) => c.trim()).filter(Boolean))];
  return classes.length ? classes : null;
}

export class RuleEditor {
  /**
   * @param {object} options
   * @param {string} options.streamId
   * @param {string} options.wsBase
   * @param {HTMLElement} options.stage the tile's picture (gets the class `drawing`)
   * @param {SVGSVGElement} options.layer the draft layer over the picture
   * @param {() => ({width: number, height: number} | null)} options.frame the frame shown
   * @param {import("./rules.js").RulesSource} options.rules
   * @param {(message: string) => void} options.onSaved
   * @param {(open: boolean) => void} [options.onToggle]
   */
  constructor({ streamId, wsBase, stage, layer, frame, rules, onSaved, onToggle = () => {} }) {
    Object.assign(this, { streamId, wsBase, stage, layer, frame, rules, onSaved, onToggle });
    this.kind = "line";
    this.points = [];
    this.cursor = null;
    this.closed = false;
    this.saving = false;
    this.build();
    this.layer.addEventListener("click", (event) => this.click(event));
    this.layer.addEventListener("pointermove", (event) => {
      this.cursor = this.fractionAt(event);
      this.redraw();
    });
    this.layer.addEventListener("pointerleave", () => {
      this.cursor = null;
      this.redraw();
    });
  }

  get isOpen() {
    return !this.element.hidden;
  }

  build() {
    const form = make("form", "rule-editor");
    form.hidden = true;
    form.noValidate = true;
    form.setAttribute("aria-label", `Draw a rule on ${this.streamId}`);
    const kinds = make("fieldset", "rule-kind");
    kinds.append(make("legend", "", "Draw a"));
    this.kindInputs = {};
    for (const kind of ["line", "zone"]) {
      const input = make("input");
      input.type = "radio";
      input.name = `kind-${this.streamId}`;
      input.value = kind;
      input.checked = kind === this.kind;
      input.addEventListener("change", () => this.setKind(kind));
      this.kindInputs[kind] = input;
      const label = make("label");
      label.append(input, ` ${kind}`);
      kinds.append(label);
    }
    this.hint = make("p", "hint");
    this.name = make("input");
    this.name.name = "name";
    this.name.required = true;
    this.name.maxLength = 64;
    this.name.autocomplete = "off";
    this.name.spellcheck = false;
    this.pointsInput = make("input");
    this.pointsInput.name = "points";
    this.pointsInput.autocomplete = "off";
    this.pointsInput.spellcheck = false;
    this.pointsInput.placeholder = "click the picture, or type x,y x,y (fractions)";
    this.pointsInput.addEventListener("input", () => {
      const typed = parsePoints(this.pointsInput.value);
      if (typed) {
        this.points = typed;
        this.closed = this.kind === "zone" && typed.length >= 3;
        this.redraw(false);
      }
    });
    this.classes = make("input");
    this.classes.name = "classes";
    this.classes.autocomplete = "off";
    this.classes.spellcheck = false;
    this.classes.placeholder = "every class (or e.g. person, car)";
    this.loiter = make("input");
    this.loiter.name = "loiter_s";
    this.loiter.type = "number";
    this.loiter.min = "0";
    this.loiter.step = "any";
    this.loiter.placeholder = "no loitering events";
    this.scope = make("select");
    this.scope.name = "scope";
    this.scopeChosen = null; // what the person picked, kept while it is still offered
    this.scope.addEventListener("change", () => {
      this.scopeChosen = this.scope.value;
    });
    this.loiterField = field("Loitering after (s)", this.loiter, "zone-only");
    const buttons = make("div", "editor-buttons");
    this.undo = make("button", "", "Undo point");
    this.undo.type = "button";
    this.undo.addEventListener("click", () => {
      this.points.pop();
      this.closed = false;
      this.redraw();
    });
    this.closeZone = make("button", "zone-only", "Close zone");
    this.closeZone.type = "button";
    this.closeZone.addEventListener("click", () => this.close());
    this.save = make("button", "save", "Save rule");
    this.save.type = "submit";
    const cancel = make("button", "", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => this.toggle(false));
    buttons.append(this.undo, this.closeZone, this.save, cancel);
    this.status = make("p", "editor-status");
    this.status.setAttribute("role", "status");
    form.append(
      kinds, this.hint,
      field("Name", this.name),
      field("Points", this.pointsInput),
      field("Classes", this.classes),
      this.loiterField,
      field("Applies to", this.scope),
      buttons, this.status,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggle(false);
    });
    this.element = form;
  }

  /** Open (true) or close (false) the editor; with no argument, the other way round. */
  toggle(open = !this.isOpen) {
    this.element.hidden = !open;
    this.stage.classList.toggle("drawing", open);
    this.layer.toggleAttribute("data-drawing", open);
    this.onToggle(open);
    if (!open) {
      this.points = [];
      this.closed = false;
      this.layer.replaceChildren();
      return;
    }
    this.setKind(this.kind);
    const problem = adminProblem();
    this.save.disabled = Boolean(problem);
    this.setStatus(problem, problem ? "error" : "");
    this.name.focus();
  }

  setKind(kind) {
    this.kind = kind;
    this.kindInputs[kind].checked = true;
    this.points = [];
    this.closed = false;
    this.element.dataset.kind = kind;
    this.hint.textContent = kind === "line"
      ? "Click two points on the picture. The arrow shows the way counted as “in”."
      : "Click the zone's corners, then click its first point (or “Close zone”).";
    this.refreshChoices();
    this.redraw();
  }

  /** The name suggested and the "applies to" choices, from the rules in force now. */
  refreshChoices() {
    const entry = rulesFor(this.rules.state.doc, this.streamId);
    if (!this.name.value || /^(line|zone)-\d+$/.test(this.name.value)) this.name.value = freshName(this.kind, entry);
    const options = [];
    if (entry) options.push([entry.pattern, entry.pattern === this.streamId
      ? `${this.streamId} (its own rules)`
      : `${entry.pattern} (every match)`]);
    if (!entry || entry.pattern !== this.streamId) options.push(["", `${this.streamId} only`]);
    this.scope.replaceChildren(...options.map(([value, text]) => {
      const option = make("option", "", text);
      option.value = value;
      return option;
    }));
    const chosen = this.scopeChosen;
    this.scope.value = options.some(([value]) => value === chosen) ? chosen : options[0][0];
  }

  setStatus(text, state = "") {
    this.status.textContent = text;
    this.status.dataset.state = state;
  }

  fractionAt(event) {
    const frame = this.frame();
    const matrix = this.layer.getScreenCTM();
    if (!frame || !matrix) return null;
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    return toFraction([point.x, point.y], frame);
  }

  click(event) {
    const frame = this.frame();
    const at = this.fractionAt(event);
    if (!frame || !at) return;
    if (this.kind === "line") {
      if (this.points.length >= 2) this.points = [];
      this.points.push(at);
    } else {
      if (this.closed) {
        this.points = [];
        this.closed = false;
      }
      const scale = this.layer.getScreenCTM()?.a || 1;
      const first = this.points[0];
      if (this.points.length >= 3 && near(toPixels(first, frame), toPixels(at, frame), CLOSE_RADIUS_PX / scale)) {
        this.close();
        return;
      }
      this.points.push(at);
    }
    this.redraw();
  }

  close() {
    if (this.kind !== "zone" || this.points.length < 3) {
      this.setStatus("A zone needs at least 3 corners.", "error");
      return;
    }
    this.closed = true;
    this.redraw();
  }

  redraw(syncText = true) {
    if (syncText) this.pointsInput.value = formatPoints(this.points);
    const frame = this.frame();
    if (!frame || !this.isOpen) return;
    drawDraft(this.layer, frame, { kind: this.kind, points: this.points, cursor: this.cursor, closed: this.closed });
    this.element.dataset.points = String(this.points.length);
  }

  /** The rule as the rules document writes it, or why it is not one yet. */
  rule() {
    const name = this.name.value.trim();
    if (!name) return { error: "Give the rule a name." };
    const classes = parseClasses(this.classes.value);
    if (this.kind === "line") {
      if (this.points.length !== 2) return { error: "A line needs two points: click them on the picture." };
      if (this.points[0][0] === this.points[1][0] && this.points[0][1] === this.points[1][1]) {
        return { error: "The line's two points are the same." };
      }
      return { rule: { name, points: this.points, ...(classes ? { classes } : {}) } };
    }
    if (this.points.length < 3) return { error: "A zone needs at least 3 corners." };
    const rule = { name, polygon: this.points, ...(classes ? { classes } : {}) };
    const loiter = this.loiter.value.trim();
    if (loiter) {
      const seconds = Number(loiter);
      if (!Number.isFinite(seconds) || seconds < 0) return { error: "Loitering is a number of seconds, 0 or more." };
      if (seconds > 0) rule.loiter_s = seconds;
    }
    return { rule };
  }

  async submit() {
    if (this.saving) return;
    const problem = adminProblem();
    if (problem) {
      this.setStatus(problem, "error");
      return;
    }
    const made = this.rule();
    if (made.error) {
      this.setStatus(made.error, "error");
      return;
    }
    this.saving = true;
    this.save.disabled = true;
    this.setStatus("Saving…", "saving");
    try {
      await this.rules.refresh(); // edit the document in force now, not the one seen earlier
      if (this.rules.state.status === "forbidden") throw new Error(this.rules.state.message);
      const scope = this.scope.value;
      if (scope && !globMatches(scope, this.streamId)) throw new Error(`${scope} does not match ${this.streamId}`);
      const changed = withRule(this.rules.state.doc, this.streamId, { kind: this.kind, rule: made.rule, scope });
      if (changed.error) throw new Error(changed.error);
      await saveRules(this.wsBase, toYaml(changed.doc));
      const message = `Saved ${this.kind} ${made.rule.name} for ${changed.pattern}.`;
      this.name.value = "";
      this.toggle(false);
      this.onSaved(message);
      await this.rules.refresh();
    } catch (error) {
      this.setStatus(`Not saved: ${error.message}`, "error");
    } finally {
      this.saving = false;
      this.save.disabled = Boolean(adminProblem());
    }
  }
}
