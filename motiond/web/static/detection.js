// The detection overlay and the mask editor of one camera card on the live page (live.js).
//
// The overlay draws, over the live picture, what the daemon sends on the live WebSocket: the
// latest frame's changed regions ("status" messages: boxes that count in red, those that do
// not, specks and movement in learned areas, in yellow, each labelled with why it did or did
// not count: "changed", "small mover", "slow"; "small", "always moving", "light"), the areas
// learned as always moving (blue) and the configured masks (gray) ("areas" messages), and a
// note when a shaking camera's shift was undone. Everything is in camera pixels.
//
// The mask editor draws polygons on the picture and shows them as YAML for motion.masks, to be
// copied into motiond.yaml by hand: the page never writes the config.

const CLOSE_DISTANCE_PX = 14; // a click this close to the first corner closes the area

// The masks as the YAML for a camera's motion section.
export function masksYaml(masks) {
  if (!masks.length) return 'motion:\n  masks: []\n';
  const lines = masks.map(
    (polygon) => '    - [' + polygon.map(([x, y]) => `[${x}, ${y}]`).join(', ') + ']',
  );
  return 'motion:\n  masks:\n' + lines.join('\n') + '\n';
}

function tracePolygon(ctx, points) {
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.closePath();
}

export class DetectionLayer {
  constructor(part) {
    this.canvas = part('canvas.detection-layer');
    this.showButton = part('.show-detection');
    this.editButton = part('.edit-masks');
    this.editor = part('.mask-editor');
    this.yaml = part('.mask-yaml');
    this.width = 0; // the camera's picture, in pixels
    this.height = 0;
    this.boxes = [];
    this.ignoredBoxes = [];
    this.reasons = []; // why each box counted, and why each ignored box did not
    this.ignoredReasons = [];
    this.shift = null; // [dx, dy] of a shaking camera, undone (detection pixels)
    this.areas = [];
    this.configured = []; // motion.masks as the daemon runs them
    this.masks = null; // the masks being edited (a copy of the configured ones at first)
    this.current = []; // corners of the area being drawn
    this.shown = false;
    this.editing = false;
    this.draws = 0;

    this.showButton.addEventListener('click', () => this.setShown(!this.shown));
    this.editButton.addEventListener('click', () => this.setEditing(!this.editing));
    this.canvas.addEventListener('click', (event) => this.onClick(event));
    part('.finish-area').addEventListener('click', () => this.finishArea());
    part('.undo-point').addEventListener('click', () => this.undo());
    part('.clear-masks').addEventListener('click', () => this.clear());
    part('.copy-yaml').addEventListener('click', () => this.copy());
  }

  setSize(width, height) {
    if (!width || !height || (width === this.width && height === this.height)) return;
    this.width = width;
    this.height = height;
    this.canvas.width = width;
    this.canvas.height = height;
    this.draw();
  }

  onAreas(message) {
    this.setSize(message.width, message.height);
    this.areas = Array.isArray(message.ignored) ? message.ignored : [];
    this.configured = Array.isArray(message.masks) ? message.masks : [];
    this.draw();
  }

  onStatus(status) {
    this.boxes = Array.isArray(status.boxes) ? status.boxes : [];
    this.ignoredBoxes = Array.isArray(status.ignored_boxes) ? status.ignored_boxes : [];
    this.reasons = Array.isArray(status.reasons) ? status.reasons : [];
    this.ignoredReasons = Array.isArray(status.ignored_reasons) ? status.ignored_reasons : [];
    this.shift = Array.isArray(status.shift) ? status.shift : null;
    if (this.shown) this.draw();
  }

  setShown(shown) {
    this.shown = shown;
    this.showButton.setAttribute('aria-pressed', String(shown));
    this.draw();
  }

  setEditing(editing) {
    this.editing = editing;
    this.editButton.setAttribute('aria-pressed', String(editing));
    this.editor.hidden = !editing;
    this.canvas.dataset.editing = String(editing);
    if (editing && this.masks === null) {
      this.masks = this.configured.map((polygon) => polygon.map(([x, y]) => [x, y]));
    }
    this.showYaml();
    this.draw();
  }

  // -- the mask editor ----------------------------------------------------------------------

  toCamera(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * this.width;
    const y = ((event.clientY - rect.top) / rect.height) * this.height;
    const clamp = (v, max) => Math.min(max, Math.max(0, Math.round(v)));
    return { point: [clamp(x, this.width), clamp(y, this.height)], scale: rect.width / this.width };
  }

  onClick(event) {
    if (!this.editing || !this.width) return;
    const { point, scale } = this.toCamera(event);
    const first = this.current[0];
    if (first && this.current.length >= 3) {
      const distance = Math.hypot(point[0] - first[0], point[1] - first[1]) * scale;
      if (distance <= CLOSE_DISTANCE_PX) {
        this.finishArea();
        return;
      }
    }
    this.current.push(point);
    this.draw();
  }

  finishArea() {
    if (this.current.length >= 3) this.masks.push(this.current);
    this.current = [];
    this.showYaml();
    this.draw();
  }

  undo() {
    if (this.current.length) this.current.pop();
    else if (this.masks.length) this.masks.pop();
    this.showYaml();
    this.draw();
  }

  clear() {
    this.masks = [];
    this.current = [];
    this.showYaml();
    this.draw();
  }

  showYaml() {
    if (this.masks !== null) this.yaml.value = masksYaml(this.masks);
    this.canvas.dataset.masks = String(this.masks ? this.masks.length : 0);
  }

  async copy() {
    const text = this.yaml.value;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard API (plain HTTP on a LAN address): select it for Ctrl+C.
      this.yaml.focus();
      this.yaml.select();
      document.execCommand('copy');
    }
  }

  // -- drawing ------------------------------------------------------------------------------

  // Each box's reason above it, in the box's colour (boxes without one are left plain).
  label(ctx, boxes, reasons, colour, line) {
    boxes.forEach(([x, y], i) => {
      if (reasons[i]) this.text(ctx, reasons[i], x, Math.max(10 * line, y - 2 * line), colour, line);
    });
  }

  text(ctx, words, x, y, colour, line) {
    ctx.font = `${Math.round(8 * line)}px sans-serif`;
    ctx.lineWidth = 3;
    ctx.strokeStyle = 'rgba(0, 0, 0, 0.7)';
    ctx.strokeText(words, x, y);
    ctx.fillStyle = colour;
    ctx.fillText(words, x, y);
    ctx.lineWidth = line;
  }

  draw() {
    const visible = this.shown || this.editing;
    this.canvas.hidden = !visible;
    if (!visible || !this.width) return;
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, this.width, this.height);
    const line = Math.max(1.5, this.width / 320);
    ctx.lineWidth = line;
    ctx.setLineDash([]);

    for (const polygon of this.editing ? this.masks : this.configured) {
      tracePolygon(ctx, polygon);
      ctx.fillStyle = 'rgba(120, 120, 120, 0.5)';
      ctx.fill();
      ctx.strokeStyle = this.editing ? '#00d492' : '#bbbbbb';
      ctx.stroke();
    }
    if (this.shown) {
      for (const area of this.areas) {
        tracePolygon(ctx, area);
        ctx.fillStyle = 'rgba(64, 156, 255, 0.35)';
        ctx.fill();
        ctx.strokeStyle = '#409cff';
        ctx.stroke();
      }
      ctx.setLineDash([4 * line, 3 * line]);
      ctx.strokeStyle = '#ffcc00';
      for (const [x, y, w, h] of this.ignoredBoxes) ctx.strokeRect(x, y, w, h);
      ctx.setLineDash([]);
      ctx.strokeStyle = '#ff3b30';
      ctx.lineWidth = line * 1.5;
      for (const [x, y, w, h] of this.boxes) ctx.strokeRect(x, y, w, h);
      ctx.lineWidth = line;
      this.label(ctx, this.ignoredBoxes, this.ignoredReasons, '#ffcc00', line);
      this.label(ctx, this.boxes, this.reasons, '#ff3b30', line);
      if (this.shift) {
        const [dx, dy] = this.shift;
        this.text(ctx, `shake undone (${dx}, ${dy})`, 4 * line, 12 * line, '#00d492', line);
      }
    }
    if (this.editing && this.current.length) {
      ctx.strokeStyle = '#00d492';
      ctx.fillStyle = '#00d492';
      ctx.beginPath();
      this.current.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
      for (const [x, y] of this.current) {
        ctx.beginPath();
        ctx.arc(x, y, line * 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    this.draws += 1;
    this.canvas.dataset.draws = String(this.draws);
    this.canvas.dataset.areas = String(this.shown ? this.areas.length : 0);
    this.canvas.dataset.boxes = String(this.shown ? this.boxes.length : 0);
    this.canvas.dataset.reasons = this.shown ? [...this.reasons, ...this.ignoredReasons].join(',') : '';
  }
}
