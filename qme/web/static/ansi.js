// Terminal output as the terminal showed it, safely: SGR colour codes become styled
// text nodes; every other escape or control sequence (cursor moves, titles, hyperlinks,
// clipboard writes, …) is dropped. Nothing is ever parsed as HTML.
"use strict";

class AnsiView {
  constructor(pre) {
    this.pre = pre;
    this.lines = []; // {segments: [{text, style}], text, lower, node, marked}
    this.pending = ""; // the raw text of the last, unfinished line
    this.pendingLine = null;
    this.state = AnsiView.plain(); // the style in force where `pending` starts
    this.term = "";
  }

  static plain() {
    return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false,
      strike: false, inverse: false };
  }

  // Add decoded text; lines already complete are never touched again.
  append(text) {
    if (!text) return;
    const atBottom = this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < 8;
    const parts = (this.pending + text).split("\n");
    this.pending = parts.pop();
    if (this.pendingLine) this.pendingLine.node.remove();
    const fragment = document.createDocumentFragment();
    for (const raw of parts) {
      const line = this.parse(raw, this.state);
      this.lines.push(line);
      fragment.append(this.render(line), "\n");
    }
    this.pendingLine = this.pending ? this.parse(this.pending, { ...this.state }) : null;
    if (this.pendingLine) fragment.append(this.render(this.pendingLine));
    this.pre.append(fragment);
    if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
  }

  // One line of raw text -> styled segments; `state` carries over to the next line.
  parse(raw, state) {
    const segments = [];
    const escapes = AnsiView.ESCAPES;
    escapes.lastIndex = 0;
    let at = 0;
    const add = (text) => {
      const clean = AnsiView.cleanControls(text);
      if (clean) segments.push({ text: clean, style: { ...state } });
    };
    for (let m = escapes.exec(raw); m; m = escapes.exec(raw)) {
      add(raw.slice(at, m.index));
      at = escapes.lastIndex;
      if (m[0] === "\r") segments.length = 0; // a carriage return rewrites the line
      else if (m[1] !== undefined) AnsiView.sgr(m[1], state);
    }
    // An escape sequence cut by the end of what has arrived so far is not shown.
    add(raw.slice(at).replace(/\x1b(\[[0-?]*[ -/]*|\][^\x07\x1b]*|[ -/]*)?$/, ""));
    const text = segments.map((s) => s.text).join("");
    return { segments, text, lower: text.toLowerCase(), node: null, marked: false };
  }

  static cleanControls(text) {
    // Backspace erases the character before it (man pages' overstrike); other
    // control characters but the tab are not shown.
    let out = text;
    while (/[^\x08]\x08/.test(out)) out = out.replace(/[^\x08]\x08/g, "");
    return out.replace(/[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g, "");
  }

  static sgr(params, state) {
    const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
    for (let i = 0; i < codes.length; i += 1) {
      const code = codes[i];
      if (code === 0) Object.assign(state, AnsiView.plain());
      else if (code === 1) state.bold = true;
      else if (code === 2) state.dim = true;
      else if (code === 3) state.italic = true;
      else if (code === 4) state.underline = true;
      else if (code === 7) state.inverse = true;
      else if (code === 9) state.strike = true;
      else if (code === 22) state.bold = state.dim = false;
      else if (code === 23) state.italic = false;
      else if (code === 24) state.underline = false;
      else if (code === 27) state.inverse = false;
      else if (code === 29) state.strike = false;
      else if (code >= 30 && code <= 37) state.fg = AnsiView.PALETTE[code - 30];
      else if (code >= 90 && code <= 97) state.fg = AnsiView.PALETTE[code - 90 + 8];
      else if (code >= 40 && code <= 47) state.bg = AnsiView.PALETTE[code - 40];
      else if (code >= 100 && code <= 107) state.bg = AnsiView.PALETTE[code - 100 + 8];
      else if (code === 39) state.fg = null;
      else if (code === 49) state.bg = null;
      else if (code === 38 || code === 48) {
        let color = null;
        if (codes[i + 1] === 5) {
          color = AnsiView.color256(codes[i + 2]);
          i += 2;
        } else if (codes[i + 1] === 2) {
          const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.min(255, v || 0));
          color = `rgb(${r}, ${g}, ${b})`;
          i += 4;
        }
        if (code === 38) state.fg = color;
        else state.bg = color;
      }
    }
  }

  static color256(n) {
    if (!(n >= 0 && n <= 255)) return null;
    if (n < 16) return AnsiView.PALETTE[n];
    if (n >= 232) {
      const level = 8 + (n - 232) * 10;
      return `rgb(${level}, ${level}, ${level})`;
    }
    const steps = [0, 95, 135, 175, 215, 255];
    const i = n - 16;
    return `rgb(${steps[Math.floor(i / 36)]}, ${steps[Math.floor(i / 6) % 6]}, ${steps[i % 6]})`;
  }

  // -- drawing and highlighting --------------------------------------------------------

  render(line) {
    const element = document.createElement("span");
    element.className = "line";
    const ranges = this.ranges(line);
    line.marked = ranges.length > 0;
    let position = 0;
    for (const segment of line.segments) {
      const end = position + segment.text.length;
      let cursor = position;
      const piece = (from, to, marked) => {
        const part = document.createElement(marked ? "mark" : "span");
        part.textContent = segment.text.slice(from - position, to - position);
        AnsiView.style(part, segment.style, marked);
        element.append(part);
      };
      for (const [from, to] of ranges) {
        if (to <= cursor || from >= end) continue;
        if (from > cursor) piece(cursor, from, false);
        piece(Math.max(from, cursor), Math.min(to, end), true);
        cursor = Math.min(to, end);
      }
      if (cursor < end) piece(cursor, end, false);
      position = end;
    }
    line.node = element;
    return element;
  }

  static style(part, style, marked) {
    let { fg, bg } = style;
    if (style.inverse) [fg, bg] = [bg || "var(--term-bg)", fg || "var(--term-fg)"];
    if (fg && !marked) part.style.color = fg;
    if (bg && !marked) part.style.backgroundColor = bg;
    if (style.bold) part.style.fontWeight = "bold";
    if (style.dim) part.style.opacity = "0.7";
    if (style.italic) part.style.fontStyle = "italic";
    const lines = [style.underline && "underline", style.strike && "line-through"].filter(Boolean);
    if (lines.length) part.style.textDecoration = lines.join(" ");
  }

  ranges(line) {
    const found = [];
    if (!this.term) return found;
    for (let at = line.lower.indexOf(this.term); at >= 0;
      at = line.lower.indexOf(this.term, at + this.term.length)) {
      found.push([at, at + this.term.length]);
    }
    return found;
  }

  // Highlight every occurrence of term (case-insensitive); returns how many there are.
  highlight(term) {
    this.term = term.toLowerCase();
    let count = 0;
    const all = this.pendingLine ? [...this.lines, this.pendingLine] : this.lines;
    for (const line of all) {
      const hits = this.term ? this.ranges(line).length : 0;
      if (hits || line.marked) {
        const old = line.node;
        old.replaceWith(this.render(line));
      }
      count += hits;
    }
    return count;
  }

  marks() {
    return [...this.pre.querySelectorAll("mark")];
  }
}

// CSI (SGR captured), OSC (ended by BEL or ST), other two-byte escapes, and \r.
AnsiView.ESCAPES = /\x1b\[([0-9;:]*)m|\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1bP[^\x1b]*\x1b\\|\x1b[ -/]*[0-~]|\r(?!$)/g;

AnsiView.PALETTE = [
  // Black (30, 40) as a grey that shows on the dark panel, as terminals' dark themes do.
  "#7a8090", "#e05561", "#8cc265", "#d18f52", "#4aa5f0", "#c162de", "#42b3c2", "#d7dae0",
  "#6b7080", "#ff616e", "#a5e075", "#f0a45d", "#4dc4ff", "#de73ff", "#4cd1e0", "#ffffff",
];
