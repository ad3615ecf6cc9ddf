// codecbench's HTML report: renders the inlined data (leaderboard, tables, SVG charts, model details).
// No library and no network: everything the page needs is in this file and the JSON element #data.
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v)) ? "—" : Number(v).toFixed(d);
// an accuracy with both ends of its 95 % Wilson interval (asymmetric near 0 and 1: never shown as a half-width)
const interval = (c) => (c && c.lo !== null && c.lo !== undefined) ? ` [${fmt(c.lo)}, ${fmt(c.hi)}]` : "";
const cellText = (c) => c ? [fmt(c.acc), el("span", {class: "ci", text: interval(c)})] : ["—"];
const pText = (p) => p === null || p === undefined ? "—" : (p < 1e-3 ? p.toExponential(1) : p.toFixed(3));

// ---------------------------------------------------------------------------- tooltip
const tip = document.getElementById("tooltip");
function showTip(event, text) {
  tip.textContent = text; tip.hidden = false;
  tip.style.left = `${event.clientX + 12}px`; tip.style.top = `${event.clientY + 12}px`;
}
function hideTip() { tip.hidden = true; }

// ---------------------------------------------------------------------------- sortable, filterable tables
function sortableTable(columns, rows, {id, onName} = {}) {
  // columns: [{key, label, value(row) -> number|string|null, render(row) -> nodes, text}]
  const tbody = el("tbody");
  const table = el("table", {id}, el("thead", {}, el("tr", {}, columns.map((c, i) =>
    el("th", {class: "sortable" + (c.text ? " text" : "") + (c.fact ? " fact" : "") + (c.cls ? ` ${c.cls}` : ""), "data-key": c.key, scope: "col",
              "aria-sort": c.key === "rank" ? "ascending" : null, onclick: () => sortBy(i)}, c.label)))), tbody);
  let order = rows.slice();
  function draw() {
    tbody.replaceChildren(...order.map((r) => el("tr", {"data-model": r.name, hidden: r.hidden},
      columns.map((c) => el("td", {class: [c.text ? "text" : "", c.fact ? "fact" : "", c.cls || ""].join(" ").trim() || null,
                                    "data-value": c.value(r) ?? ""}, c.render(r))))));
  }
  function sortBy(i) {
    const th = table.tHead.rows[0].cells[i];
    const dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1;  // first click: descending
    for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    const value = columns[i].value;
    order.sort((a, b) => {
      const x = value(a), y = value(b);
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (typeof x === "string" ? x.localeCompare(y) : x - y) * dir;
    });
    draw();
  }
  table.redraw = draw;
  draw();
  return table;
}

// ---------------------------------------------------------------------------- charts
// Round ticks (1, 2, 2.5, 5 x 10^k), axes fitted to the data, a zero line, reference lines, and per series a colour,
// a marker and a dash from the report's palette (codecbench/report/palette.py, shared with the PNG figures).
function niceStep(span, count) {
  const raw = span / Math.max(1, count), mag = 10 ** Math.floor(Math.log10(raw)), n = raw / mag;
  const e = 1e-9;  // 0.2 / 0.1 is 2.0000000000000004
  return (n <= 1 + e ? 1 : n <= 2 + e ? 2 : n <= 2.5 + e ? 2.5 : n <= 5 + e ? 5 : 10) * mag;
}
function decimals(step) {
  for (let d = 0; d < 7; d++) if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-6) return d;
  return 6;
}
function ticksOf(lo, hi, step) {
  const ticks = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(k * step);
  return {ticks, digits: decimals(step)};
}
// the values' range, padded by 5 % and widened to round ticks, within clamp
function fitRange(values, clamp = [-Infinity, Infinity]) {
  const v = values.filter(Number.isFinite);
  if (!v.length) return [0, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  if (hi - lo < 0.02) { lo -= 0.01; hi += 0.01; }
  const pad = (hi - lo) * 0.05, step = niceStep(hi - lo + 2 * pad, 5);
  return [Math.max(clamp[0], Math.floor((lo - pad) / step) * step), Math.min(clamp[1], Math.ceil((hi + pad) / step) * step)];
}
function markerShape(shape, x, y, r, colour, attrs = {}) {
  const poly = (pts) => el("svg:polygon", {points: pts.map(([a, b]) => `${x + a * r},${y + b * r}`).join(" "), fill: colour, ...attrs});
  const cross = (d) => el("svg:path", {d, stroke: colour, "stroke-width": 2.2, fill: "none", ...attrs});
  switch (shape) {
    case "square": return el("svg:rect", {x: x - r * 0.85, y: y - r * 0.85, width: 1.7 * r, height: 1.7 * r, fill: colour, ...attrs});
    case "triangle": return poly([[0, -1.15], [1.05, 0.75], [-1.05, 0.75]]);
    case "triangle-down": return poly([[0, 1.15], [1.05, -0.75], [-1.05, -0.75]]);
    case "diamond": return poly([[0, -1.2], [1.0, 0], [0, 1.2], [-1.0, 0]]);
    case "star": return poly(Array.from({length: 10}, (_, i) => {
      const a = -Math.PI / 2 + i * Math.PI / 5, k = i % 2 ? 0.5 : 1.3; return [k * Math.cos(a), k * Math.sin(a)]; }));
    case "plus": return cross(`M${x - r} ${y}H${x + r}M${x} ${y - r}V${y + r}`);
    case "cross": return cross(`M${x - r} ${y - r}L${x + r} ${y + r}M${x - r} ${y + r}L${x + r} ${y - r}`);
    default: return el("svg:circle", {cx: x, cy: y, r, fill: colour, ...attrs});
  }
}
const DASH = {solid: null, dashed: "6 3", dotted: "1.5 2.5", dashdot: "6 2 1.5 2"};
function swatch(style) {
  return el("svg:svg", {width: 26, height: 12, viewBox: "0 0 26 12", class: "swatch", "aria-hidden": "true"},
            el("svg:line", {x1: 1, x2: 25, y1: 6, y2: 6, stroke: style.colour, "stroke-width": 1.8, "stroke-dasharray": DASH[style.dash]}),
            markerShape(style.marker, 13, 6, 3.6, style.colour));
}
// the width a chart gets: the page's, up to 560 px (a phone gets a narrower chart, not a page that scrolls sideways)
const chartWidth = (most) => Math.max(260, Math.min(most, (document.documentElement.clientWidth || most) - 28));

function chart({xs, xLabel, yLabel, yRange, logX = false, series, id, xTicks, xTickLabel = String, maxWidth = 560}) {
  // series: [{name, style: {colour, marker, dash}, points: [{x, y, lo, hi, tip}], band: bool,
  //           lines: [[i, j]] (pairs of point indices), refs: [{y, tip}] (horizontal reference lines)}]
  const width = chartWidth(maxWidth), height = width < 420 ? 250 : (width > 600 ? 360 : 300);
  const m = {l: 50, r: 12, t: 10, b: 40};
  const fx = logX ? Math.log : (v) => v;
  const [x0, x1] = [Math.min(...xs.map(fx)), Math.max(...xs.map(fx))];
  const xPad = x1 === x0 ? 1 : (x1 - x0) * 0.04;
  const sx = (v) => m.l + (fx(v) - x0 + xPad) / (x1 - x0 + 2 * xPad) * (width - m.l - m.r);
  // the axis starts and ends on a tick: the range widened to whole steps of this chart's tick spacing
  const yStep = niceStep(yRange[1] - yRange[0], width < 420 ? 4 : 5);
  const y0 = Math.floor(yRange[0] / yStep + 1e-9) * yStep, y1 = Math.ceil(yRange[1] / yStep - 1e-9) * yStep;
  const sy = (v) => height - m.b - (v - y0) / (y1 - y0) * (height - m.t - m.b);
  const svg = el("svg:svg", {width, height, viewBox: `0 0 ${width} ${height}`, id, role: "img", "aria-label": `${yLabel} against ${xLabel}`});
  const {ticks, digits} = ticksOf(y0, y1, yStep);
  for (const v of ticks) {
    svg.append(el("svg:line", {class: "grid", x1: m.l, x2: width - m.r, y1: sy(v), y2: sy(v)}),
               el("svg:text", {class: "ytick", x: m.l - 6, y: sy(v) + 4, "text-anchor": "end", "data-value": v, text: v.toFixed(digits)}));
  }
  if (y0 < 0 && y1 > 0) svg.append(el("svg:line", {class: "zero", x1: m.l, x2: width - m.r, y1: sy(0), y2: sy(0)}));
  let lastLabel = -Infinity;
  for (const t of (xTicks || xs)) {  // labels closer than 30 px are thinned out, never overprinted
    if (sx(t) - lastLabel < 30) continue;
    lastLabel = sx(t);
    svg.append(el("svg:line", {class: "axis", x1: sx(t), x2: sx(t), y1: height - m.b, y2: height - m.b + 4}),
               el("svg:text", {class: "xtick", x: sx(t), y: height - m.b + 15, "text-anchor": "middle", text: xTickLabel(t)}));
  }
  svg.append(el("svg:line", {class: "axis", x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b}),
             el("svg:line", {class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: height - m.b}),
             el("svg:text", {x: (width + m.l) / 2, y: height - 6, "text-anchor": "middle", text: xLabel}),
             el("svg:text", {x: 12, y: (height - m.b) / 2, transform: `rotate(-90 12 ${(height - m.b) / 2})`, "text-anchor": "middle",
                             text: yLabel}));
  const legend = el("div", {class: "legend", style: `max-width: ${width}px`});
  for (const s of series) {
    const {colour, marker, dash} = s.style;
    const g = el("svg:g", {"data-series": s.name});
    const pts = s.points.filter((p) => p.y !== null && p.y !== undefined);
    for (const r of (s.refs || [])) {
      g.append(el("svg:line", {class: "reference", x1: m.l, x2: width - m.r, y1: sy(r.y), y2: sy(r.y), stroke: colour,
                               "stroke-width": 1, "stroke-dasharray": "2 3", "stroke-opacity": 0.9,
                               onmousemove: (e) => showTip(e, r.tip), onmouseleave: hideTip}));
    }
    if (s.band && pts.length > 1) {
      const top = pts.map((p) => `${sx(p.x)},${sy(p.hi)}`), bottom = pts.slice().reverse().map((p) => `${sx(p.x)},${sy(p.lo)}`);
      g.append(el("svg:polygon", {points: top.concat(bottom).join(" "), fill: colour, "fill-opacity": 0.10}));
    }
    for (const [i, j] of (s.lines || [])) {
      const a = s.points[i], b = s.points[j];
      if (a && b && a.y !== null && b.y !== null) {
        g.append(el("svg:line", {x1: sx(a.x), y1: sy(a.y), x2: sx(b.x), y2: sy(b.y), stroke: colour,
                                 "stroke-width": 1.7, "stroke-dasharray": DASH[dash]}));
      }
    }
    for (const p of pts) {
      if (p.lo !== null && p.lo !== undefined && !s.band) {
        g.append(el("svg:line", {x1: sx(p.x), x2: sx(p.x), y1: sy(p.lo), y2: sy(p.hi), stroke: colour, "stroke-opacity": 0.55}));
      }
      g.append(markerShape(marker, sx(p.x), sy(p.y), 3.6, colour, {class: "point", onmousemove: (e) => showTip(e, p.tip), onmouseleave: hideTip}));
    }
    svg.append(g);
    legend.append(el("button", {type: "button", "aria-pressed": "true", "data-series": s.name, onclick: (e) => {
      const on = e.currentTarget.getAttribute("aria-pressed") !== "true";
      e.currentTarget.setAttribute("aria-pressed", String(on));
      g.classList.toggle("hidden", !on);
    }}, swatch(s.style), s.name));
  }
  return el("div", {class: "figure"}, svg, legend);
}

// ---------------------------------------------------------------------------- one group (dataset x matrix)
function renderGroup(group, gi) {
  const root = el("section", {class: "group", id: `group-${gi}`});
  const modelNames = group.models.map((m) => m.name);
  const cell = (model, cond) => group.cells[`${model}|${cond}`];
  const paired = (ref, model, cond) => group.paired[`${ref}|${model}|${cond}`];
  const modelStyle = (name) => group.styles.models[name], conditionStyle = (name) => group.styles.conditions[name];
  const cats = Object.keys(group.categories);
  root.append(el("h2", {text: `${group.dataset.name || "?"} · ${group.dataset.split || "?"} split · matrix ${group.matrix || "?"}`}),
              el("p", {class: "muted", text: `Run ${group.run_id || "?"} of ${group.started || "?"}` +
                 (group.composed_from.length > 1 ? `, composed from runs ${group.composed_from.join(", ")} (the latest result of each cell)` : "") +
                 `, git ${(group.git_commit || "?").slice(0, 10)}; dataset fingerprint ${(group.dataset.fingerprint || "?").slice(0, 12)}.`}));

  // leaderboard: ranked by the headline score (coded accuracy), the key columns first, the model column sticky
  const swept = Object.keys(group.sweeps);
  const valueText = (x, d = 3) => x && x.v !== null && x.v !== undefined ? [fmt(x.v, d), el("span", {class: "ci", text: x.lo !== null && x.lo !== undefined ? ` [${fmt(x.lo, d)}, ${fmt(x.hi, d)}]` : ""})] : "—";
  const rceReference = group.reference;
  const facts = [
    {key: "kind", fact: true, label: "kind", text: true, value: (r) => r.kind, render: (r) => r.kind},
    {key: "frontend", fact: true, label: "front-end", text: true, value: (r) => r.frontend, render: (r) => r.frontend},
    {key: "params", fact: true, label: "parameters", value: (r) => r.params, render: (r) => r.params ? Number(r.params).toLocaleString("en") : "—"},
    {key: "origin", fact: true, label: "where from", text: true, value: (r) => r.origin, render: (r) => r.origin},
  ];
  // a fact that is the same for every model says nothing about the ranking: folded into one line under the table
  const same = group.models.length > 1 ? facts.filter((c) => new Set(group.models.map((r) => String(c.value(r)))).size === 1) : [];
  const columns = [
    {key: "rank", label: "rank", cls: "rank", value: (r) => r.rank ?? null, render: (r) => r.rank ? `${r.rank}` + (r.complete === false ? " (incomplete)" : "") : "—"},
    {key: "model", label: "model", text: true, cls: "model-col", value: (r) => r.name,
     render: (r) => el("button", {class: "link model", type: "button", "data-model": r.name, onclick: () => showDetail(r.name)}, r.name)},
    {key: "wav", label: "uncoded", value: (r) => r.wav && r.wav.acc, render: (r) => cellText(r.wav)},
    {key: "coded", label: "coded accuracy", value: (r) => r.coded && r.coded.acc, render: (r) => cellText(r.coded)},
    {key: "log_loss", label: "coded log-loss", lowerBetter: true, value: (r) => r.log_loss && r.log_loss.v, render: (r) => valueText(r.log_loss)},
    {key: "worst", label: "worst condition", value: (r) => r.worst && r.worst.acc,
     render: (r) => r.worst ? [cellText(r.worst), el("span", {class: "ci", text: ` ${r.worst.condition}`})] : "—"},
    {key: "rce", label: `relative coding error${rceReference ? ` (vs ${rceReference})` : ""}`, lowerBetter: true, value: (r) => r.rce && r.rce.v, render: (r) => valueText(r.rce, 1)},
    {key: "retained", label: "retained", value: (r) => r.retained && r.retained.v, render: (r) => valueText(r.retained)},
    ...cats.map((cat) => ({key: `cat:${cat}`, label: `${cat} mean`, value: (r) => r[`cat:${cat}`] && r[`cat:${cat}`].acc,
                           render: (r) => cellText(r[`cat:${cat}`])})),
    ...swept.flatMap((codec) => [
      {key: `retained:${codec}`, label: `${codec} retained`, value: (r) => r.sweeps[codec] && r.sweeps[codec].retained,
       render: (r) => r.sweeps[codec] ? [fmt(r.sweeps[codec].retained), el("span", {class: "ci", text: ` [${fmt(r.sweeps[codec].retained_lo)}, ${fmt(r.sweeps[codec].retained_hi)}]`})] : "—"},
      {key: `breakeven:${codec}`, label: `${codec} break-even kbps`, value: (r) => r.sweeps[codec] ? (r.sweeps[codec].break_even ?? Infinity) : null,
       render: (r) => r.sweeps[codec] ? `${r.sweeps[codec].break_even ?? "never"} [${r.sweeps[codec].break_even_lo ?? "never"}, ${r.sweeps[codec].break_even_hi ?? "never"}]` : "—"}]),
    ...facts.filter((c) => !same.includes(c)),
  ];
  const board = sortableTable(columns, group.models, {id: `leaderboard-${gi}`});
  const kinds = [...new Set(group.models.map((m) => m.kind))];
  const filterName = el("input", {type: "search", placeholder: "filter models", "aria-label": "filter models by name"});
  const filterKind = el("select", {"aria-label": "filter by kind"}, el("option", {value: "", text: "all kinds"}),
                        kinds.map((k) => el("option", {value: k, text: k})));
  const applyFilter = () => {
    for (const m of group.models) {
      m.hidden = !(m.name.toLowerCase().includes(filterName.value.toLowerCase()) && (!filterKind.value || m.kind === filterKind.value));
    }
    board.redraw();
  };
  filterName.addEventListener("input", applyFilter);
  filterKind.addEventListener("change", applyFilter);
  root.append(el("h3", {text: "Leaderboard"}),
              el("p", {class: "muted", text: `Ranked by coded accuracy: the accuracy pooled over every coded condition (each clip under each codec counts once); higher is better. Coded log-loss: DCASE's log-loss pooled the same way, lower is better. Relative coding error: per codec family, the model's errors over ${rceReference || "the reference model"}'s, averaged over families, × 100 (100 = as robust as ${rceReference || "the reference"}; lower is better). Retained: coded / uncoded accuracy. Intervals of the headline figures: 95 % bootstrap over clips, the same resamples for every model; category means pool the category's conditions (Wilson intervals); retained accuracy and break-even bit rate per swept codec come with paired-bootstrap intervals. Click a heading to sort.`}),
              el("div", {class: "controls"}, filterName, filterKind), el("div", {class: "scroll"}, board),
              same.length ? el("p", {class: "muted", id: `same-${gi}`, text: "The same for every model: " + same.map((c) => `${c.label} ${c.value(group.models[0]) ?? "—"}`).join("; ") + "."}) : null);

  // every metric per condition, every matrix: models in rank order, the best of each column bold
  const metrics = [
    {key: "acc", label: "accuracy", higher: true, lo: "lo", hi: "hi"},
    {key: "log_loss", label: "log-loss", higher: false, lo: "log_loss_low", hi: "log_loss_high"},
    {key: "macro_accuracy", label: "class-wise accuracy", higher: true, lo: "macro_accuracy_low", hi: "macro_accuracy_high"},
    {key: "ece", label: "expected calibration error", higher: false, lo: "ece_low", hi: "ece_high"},
    {key: "brier", label: "Brier score", higher: false, lo: "brier_low", hi: "brier_high"},
  ];
  const metricPick = el("select", {"aria-label": "metric per condition", id: `metric-${gi}`},
                        metrics.map((m, i) => el("option", {value: String(i), text: m.label})));
  const conditionBody = el("tbody");
  const drawConditions = () => {
    const m = metrics[Number(metricPick.value)];
    const value = (model, cond) => { const x = cell(model, cond); return x && x[m.key] !== null && x[m.key] !== undefined ? x[m.key] : null; };
    conditionBody.replaceChildren(...group.models.map((row) => el("tr", {"data-model": row.name}, el("td", {class: "text model-col", text: row.name}),
      group.conditions.map((c) => {
        const v = value(row.name, c.name), x = cell(row.name, c.name);
        const all = group.models.map((o) => value(o.name, c.name)).filter((y) => y !== null);
        const best = v !== null && v === (m.higher ? Math.max(...all) : Math.min(...all));
        return el("td", {class: best ? "best" : null, "data-value": v ?? ""}, v === null ? "—" :
                  [fmt(v), el("span", {class: "ci", text: x[m.lo] !== null && x[m.lo] !== undefined ? ` [${fmt(x[m.lo])}, ${fmt(x[m.hi])}]` : ""})]);
      }))));
  };
  metricPick.addEventListener("change", drawConditions);
  drawConditions();
  root.append(el("h3", {text: "Every condition"}),
              el("p", {class: "muted", text: "Per cell, with its 95 % interval (Wilson for accuracy, bootstrap over clips for the others): DCASE's log-loss (lower is better), class-wise average accuracy, the expected calibration error (15 bins; lower is better) and the multi-class Brier score (lower is better). A cell without probabilities (an older results file) shows —."}),
              el("div", {class: "controls"}, el("label", {}, "metric ", metricPick)),
              el("div", {class: "scroll"}, el("table", {id: `conditions-${gi}`, class: "ranked"},
                el("thead", {}, el("tr", {}, el("th", {class: "text model-col", text: "model"}), group.conditions.map((c) => el("th", {text: c.name})))),
                conditionBody)));

  // the paper against this run (report --paper NAME, or a reproduce run): cell by cell on the paper's own data, else the findings
  if (group.paper) {
    const P = group.paper;
    root.append(el("h3", {text: `Paper vs this run: ${P.title}`}));
    if (P.on_papers_data) {
      const rows = new Map();
      for (const r of P.table2) { if (!rows.has(r.condition)) rows.set(r.condition, {category: r.category, cells: {}}); rows.get(r.condition).cells[r.epoch] = r; }
      const compared = P.table2.filter((r) => r.paper_inside_ci !== null), inside = compared.filter((r) => r.paper_inside_ci).length;
      root.append(el("p", {class: "muted", text: `${P.caption}, on ${P.dataset}. Each cell: this run's accuracy [95 % Wilson interval], the paper's value below it, and ✓ when the paper's value lies inside the interval. ${P.facts}`}),
        el("div", {class: "scroll"}, el("table", {id: `paper-${gi}`},
          el("thead", {}, el("tr", {}, el("th", {class: "text", text: "category"}), el("th", {class: "text", text: "condition"}),
            P.epochs.map((e) => el("th", {text: `epoch ${e}`})))),
          el("tbody", {}, [...rows].map(([cond, row]) => el("tr", {}, el("td", {class: "text", text: row.category}), el("td", {class: "text", text: cond}),
            P.epochs.map((e) => { const r = row.cells[e];
              if (!r || r.paper_inside_ci === null) return el("td", {}, "—", el("div", {class: "ci", text: r ? `paper ${fmt(r.paper)}` : ""}));
              return el("td", {class: r.paper_inside_ci ? "inside" : "outside"}, fmt(r.run), el("span", {class: "ci", text: ` [${fmt(r.ci_low)}, ${fmt(r.ci_high)}]`}),
                        el("div", {class: "ci", text: `paper ${fmt(r.paper)} (${r.delta >= 0 ? "+" : ""}${fmt(r.delta)}) ${r.paper_inside_ci ? "✓" : "✗"}`}));
            })))))),
        el("p", {class: "muted", text: `The paper's value lies inside this run's interval in ${inside} of ${compared.length} cells.`}));
    } else {
      root.append(el("p", {class: "muted", text: `This run did not score the paper's data (${P.dataset}), so its accuracies are not comparable with the published ones; the comparison is of the findings. ${P.facts}`}),
        el("div", {class: "scroll"}, el("table", {id: `paper-${gi}`},
          el("thead", {}, el("tr", {}, ["finding", "the paper", "this run"].map((h) => el("th", {class: "text", text: h})))),
          el("tbody", {}, P.findings.map((f) => el("tr", {}, [f.finding, f.paper, f.run].map((v) => el("td", {class: "text wrap", text: v}))))))));
    }
  }

  // the study's tables
  const reference = modelNames.includes("base") ? "base" : modelNames[0];
  const studyTable = (cols, id) => {
    const head = el("tr", {}, el("th", {class: "text", text: "category"}), el("th", {class: "text", text: "condition"}),
                    cols.map((c) => el("th", {text: c.label})));
    const rows = group.conditions.map((cond) => {
      const accs = cols.map((c) => (cell(c.model, cond.name) || {}).acc ?? -1);
      const best = Math.max(...accs);
      return el("tr", {}, el("td", {class: "text", text: cond.category}), el("td", {class: "text", text: cond.name}),
                cols.map((c, i) => {
                  const x = cell(c.model, cond.name), p = paired(reference, c.model, cond.name);
                  const sig = p && p.p !== null && p.p < DATA.alpha ? (p.delta > 0 ? "sig-up" : "sig-down") : "";
                  const older = x && group.run_id && x.run_id !== group.run_id ? "older" : "";
                  return el("td", {class: [accs[i] === best && x ? "best" : "", sig, older].join(" ").trim() || null,
                                   title: p ? `vs ${reference}: ${p.delta >= 0 ? "+" : ""}${fmt(p.delta)}, p = ${pText(p.p)}` : null},
                            cellText(x), sig ? el("span", {class: "mark", text: " *"}) : null, older ? el("span", {class: "mark older-mark", text: " †"}) : null);
                }));
    });
    return el("div", {class: "scroll"}, el("table", {id}, el("thead", {}, head), el("tbody", {}, rows)));
  };
  const marks = `Best of each row bold; * a significant change against ${reference} (exact McNemar, p < ${DATA.alpha}; blue up, vermillion down); † a cell from an earlier run.`;
  if (group.tables.table2) root.append(el("h3", {text: "Table 2: full fine-tuning by epoch"}), el("p", {class: "muted", text: marks}), studyTable(group.tables.table2, `table2-${gi}`));
  if (group.tables.segments) root.append(el("h3", {text: "Segmental fine-tuning (Experiment B)"}), studyTable(group.tables.segments, `segments-${gi}`));
  const others = group.models.filter((m) => m.name !== reference);
  if (others.length) {
    root.append(el("h3", {text: `Each model vs ${reference}: accuracy change (exact McNemar on paired clips)`}),
                el("div", {class: "scroll"}, el("table", {id: `significance-${gi}`},
                  el("thead", {}, el("tr", {}, el("th", {class: "text", text: "model"}), group.conditions.map((c) => el("th", {text: c.name})))),
                  el("tbody", {}, others.map((m) => el("tr", {}, el("td", {class: "text", text: m.name}), group.conditions.map((c) => {
                    const p = paired(reference, m.name, c.name);
                    if (!p) return el("td", {text: "—"});
                    const sig = p.p !== null && p.p < DATA.alpha ? (p.delta > 0 ? "sig-up" : "sig-down") : null;
                    return el("td", {class: sig, title: `p = ${pText(p.p)}, n = ${p.n}`}, `${p.delta >= 0 ? "+" : ""}${fmt(p.delta)}`, sig ? el("span", {class: "mark", text: " *"}) : null);
                  })))))));
  }

  // Figure 2: change against the base per fine-tuned segment, measured segments only; a dotted line per condition
  // at the full model's change (the study's comparison: can one segment match the whole model?)
  const segs = group.models.map((m) => [/^finetuned_seg(\d+)$/.exec(m.name), m.name]).filter(([r]) => r)
                 .map(([r, name]) => [Number(r[1]), name]).sort((a, b) => a[0] - b[0]);
  if (segs.length && modelNames.includes(reference)) {
    const full = group.full_model && modelNames.includes(group.full_model) ? group.full_model : null;
    const n = group.conditions.length;
    const series = group.conditions.map((cond, i) => {
      const base = cell(reference, cond.name);
      const dx = n > 1 ? (i / (n - 1) - 0.5) * 0.4 : 0;  // side by side, so the intervals do not hide each other
      const points = segs.map(([k, name]) => {
        const c = cell(name, cond.name);
        if (!c || !base) return {x: k + dx, y: null};
        return {x: k + dx, y: c.acc - base.acc, lo: c.lo - base.acc, hi: c.hi - base.acc,
                tip: `${name} on ${cond.name}\naccuracy ${fmt(c.acc)} [${fmt(c.lo)}, ${fmt(c.hi)}], n = ${c.n}\nchange vs ${reference}: ${fmt(c.acc - base.acc)}`};
      });
      // a line joins neighbouring segments only: a gap in the segments is not drawn over
      const lines = points.slice(1).map((p, j) => [j, j + 1]).filter(([a, b]) => Math.round(points[b].x - points[a].x) === 1);
      const fc = full && cell(full, cond.name);
      const refs = fc && base ? [{y: fc.acc - base.acc, tip: `${full} on ${cond.name}: change vs ${reference} ${fmt(fc.acc - base.acc)}`}] : [];
      return {name: `${cond.name} (${cond.category})`, style: conditionStyle(cond.name), points, lines, refs};
    });
    const ys = series.flatMap((s) => [...s.points.flatMap((p) => p.y === null ? [] : [p.lo, p.hi]), ...s.refs.map((r) => r.y)]);
    root.append(el("h3", {text: "Figure 2: accuracy change against the base per fine-tuned segment"}),
                el("p", {class: "muted", text: `Markers: one segment fine-tuned alone, with its 95 % interval; dotted lines: the full model (${full || "not in this run"}) on the same condition; the solid black line is no change.`}),
                chart({xs: segs.map(([k]) => k), xLabel: "fine-tuned segment", yLabel: `accuracy − ${reference}`,
                       yRange: fitRange([0, ...ys], [-1, 1]), series, id: `figure2-${gi}`, maxWidth: 860}));
  }

  // accuracy against bit rate, per swept codec; the models to show are chosen (16 bands at once are unreadable)
  // accuracy against bit rate (log x) and against the share of packets lost (linear x): one chart per sweep
  const sweepSection = (sweeps, title, note, xLabel, logX, prefix) => {
    const names = Object.keys(sweeps);
    if (!names.length) return;
    const original = group.conditions.find((c) => c.original);
    // the reference model (base) and the best ranked: the comparison a reader wants first
    const shown = new Set([...new Set([...(modelNames.includes(reference) ? [reference] : []), ...modelNames])].slice(0, 4));
    const holder = el("div");
    const pick = el("div", {class: "controls"}, el("span", {class: "muted", text: "models shown:"}),
      modelNames.map((name) => el("label", {}, el("input", {type: "checkbox", checked: shown.has(name), "data-model": name,
        onchange: (e) => { e.target.checked ? shown.add(name) : shown.delete(name); draw(); }}), ` ${name}`)));
    const draw = () => holder.replaceChildren(...names.map((sweep) => {
      const pts = sweeps[sweep];
      const series = modelNames.filter((n) => shown.has(n)).map((name) => {
        const o = original && cell(name, original.name);
        return {name, style: modelStyle(name), band: true, lines: pts.slice(1).map((_, j) => [j, j + 1]),
          refs: o ? [{y: o.acc, tip: `${name} on ${original.name} (uncoded): ${fmt(o.acc)} [${fmt(o.lo)}, ${fmt(o.hi)}]`}] : [],
          points: pts.map((p) => { const c = cell(name, p.condition); return c ? {x: p.x, y: c.acc, lo: c.lo, hi: c.hi,
            tip: `${name} on ${p.condition}\naccuracy ${fmt(c.acc)} [${fmt(c.lo)}, ${fmt(c.hi)}], n = ${c.n}`} : {x: p.x, y: null}; })};
      });
      const ys = series.flatMap((s) => [...s.points.flatMap((p) => p.y === null ? [] : [p.lo, p.hi]), ...s.refs.map((r) => r.y)]);
      return el("div", {class: "figure"}, el("h3", {text: sweep}),
                chart({xs: pts.map((p) => p.x), xLabel, yLabel: "accuracy", logX,
                       xTickLabel: (k) => `${+k.toPrecision(3)}`, yRange: fitRange(ys, [0, 1]), series, id: `${prefix}-${gi}-${sweep}`}));
    }));
    draw();
    root.append(el("h2", {text: title}), el("p", {class: "muted", text: note}), pick, holder);
  };
  sweepSection(Object.fromEntries(swept.map((codec) => [codec, group.sweeps[codec].map((p) => ({x: p.kbps, condition: p.condition}))])),
               "Accuracy against bit rate", "Lines: accuracy at each swept rate with its 95 % band; dotted: the same model on the uncoded audio.",
               "bit rate (kbps, log scale)", true, "sweep");
  sweepSection(Object.fromEntries(Object.entries(group.loss_sweeps || {}).map(([name, pts]) => [name, pts.map((p) => ({x: p.loss, condition: p.condition}))])),
               "Accuracy against packet loss", "Lines: accuracy at each share of packets lost with its 95 % band (0 %: the codec without loss); dotted: the same model on the uncoded audio.",
               "packets lost (%)", false, "loss");

  // the remedies compared: one model each, pairwise exact McNemar on (clip, condition) pairs
  if (group.remedies) {
    const interval = (x) => [fmt(x.acc), el("span", {class: "ci", text: ` [${fmt(x.lo)}, ${fmt(x.hi)}]`})];
    const better = (r) => r.p === null || r.p >= DATA.alpha ? "—" : (r.a_only > r.b_only ? r.remedy_a : r.remedy_b);
    const remedyNames = Object.keys(group.remedies.per_condition[0] || {}).filter((k) => k !== "condition");
    root.append(el("h2", {text: "The remedies compared"}),
      el("p", {class: "muted", text: "One model per remedy, compared pairwise over every coded condition both ran, paired by clip and condition (exact McNemar)."}),
      el("div", {class: "scroll"}, el("table", {}, el("thead", {}, el("tr", {}, ["remedy A", "remedy B", "pairs", "accuracy A", "accuracy B", "only A / only B right", "McNemar p", `better (p < ${DATA.alpha})`].map((h, i) => el("th", {class: i < 2 || i === 7 ? "text" : null, text: h})))),
        el("tbody", {}, group.remedies.pairs.map((r) => el("tr", {}, el("td", {class: "text", text: `${r.remedy_a} (${r.model_a})`}), el("td", {class: "text", text: `${r.remedy_b} (${r.model_b})`}),
          el("td", {text: String(r.pairs)}), el("td", {}, interval(r.a)), el("td", {}, interval(r.b)), el("td", {text: `${r.a_only} / ${r.b_only}`}),
          el("td", {text: r.p === null ? "—" : r.p.toPrecision(2)}), el("td", {class: "text", text: better(r)})))))),
      el("div", {class: "scroll"}, el("table", {}, el("thead", {}, el("tr", {}, ["condition", ...remedyNames].map((h, i) => el("th", {class: i === 0 ? "text" : null, text: h})))),
        el("tbody", {}, group.remedies.per_condition.map((r) => el("tr", {}, el("td", {class: "text", text: r.condition}), remedyNames.map((k) => el("td", {text: fmt(r[k])}))))))));
  }

  // why models fail: the diagnoses of `codecbench diagnose`
  if ((group.diagnoses || []).length) {
    root.append(el("h2", {text: "Why models fail: diagnoses"}),
      ...group.diagnoses.map((d) => el("div", {class: "figure"}, el("h3", {text: `${d.model} under ${d.condition}`}), el("p", {text: d.verdict}),
        d.figure ? el("img", {src: d.figure, alt: `diagnosis of ${d.model} under ${d.condition}`, style: "max-width: 100%; height: auto"}) : [])));
  }

  // codec facts, provenance, files
  if (group.codec_facts.length) {
    const khz = (v) => v === null || v === undefined ? "—" : String(v).split("/").map((x) => `${+(Number(x) / 1000).toFixed(2)} kHz`).join(" / ");
    const lossy = group.codec_facts.some((f) => f.packets_lost !== undefined && f.packets_lost !== null);
    const heads = ["condition", "achieved kbps", "bandwidth kept", "source bandwidth", "source rate", "codec rate", "mel distance (dB)", "SNR (dB)", "SI-SDR (dB)", "library", ...(lossy ? ["packets lost"] : [])];
    root.append(el("h3", {text: "Codec facts (measured during the run on its own clips)"}),
      el("div", {class: "scroll"}, el("table", {}, el("thead", {}, el("tr", {}, heads.map((h, i) => el("th", {class: i === 0 || i === 9 ? "text" : null, text: h})))),
        el("tbody", {}, group.codec_facts.map((f) => el("tr", {}, el("td", {class: "text", text: f.condition}), el("td", {text: fmt(f.achieved_kbps, 1)}),
          el("td", {text: khz(f.bandwidth_hz)}), el("td", {text: khz(f.source_bandwidth_hz)}), el("td", {text: khz(f.source_sample_rate)}),
          el("td", {text: khz(f.codec_sample_rate)}), el("td", {text: fmt(f.mel_distance_db, 1)}), el("td", {text: fmt(f.snr_db, 1)}),
          el("td", {text: fmt(f.si_sdr_db, 1)}), el("td", {class: "text", text: f.library || "—"}),
          lossy ? el("td", {text: f.packets_lost === null || f.packets_lost === undefined ? "—" : `${(100 * f.packets_lost).toFixed(1)} %`}) : []))))));
  }
  const prov = group.provenance;
  root.append(el("details", {}, el("summary", {text: "Provenance: dataset, libraries, machine"}),
    el("dl", {class: "facts"}, Object.entries({dataset: `${group.dataset.name} (${group.dataset.root || "?"})`, matrix: group.matrix,
      "git commit": group.git_commit, precision: prov.precision, thresholds: prov.thresholds, baseline: prov.baseline,
      ...Object.fromEntries(Object.entries(prov.libraries || {}).map(([k, v]) => [k, v])),
      ...Object.fromEntries(Object.entries(prov.machine || {}).map(([k, v]) => [`machine: ${k}`, typeof v === "object" ? JSON.stringify(v) : v]))})
      .flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v === null || v === undefined ? "—" : String(v)})]))));

  // per-model detail
  const detail = el("div", {id: `detail-${gi}`, hidden: true, class: "detail"});
  detail.id = gi === 0 ? "detail" : `detail-${gi}`;
  root.append(detail);
  function showDetail(name) {
    const model = group.models.find((m) => m.name === name);
    const refSelect = el("select", {"aria-label": "reference model", class: "reference"},
      modelNames.filter((n) => n !== name).map((n) => el("option", {value: n, text: n, selected: n === reference})));
    const condSelect = el("select", {"aria-label": "condition", class: "condition"}, group.conditions.map((c) => el("option", {value: c.name, text: c.name})));
    const pairedBox = el("div"), confusionBox = el("div");
    const drawPaired = () => pairedBox.replaceChildren(el("div", {class: "scroll"}, el("table", {class: "paired"},
      el("thead", {}, el("tr", {}, ["condition", "this model", refSelect.value, "change", "p (McNemar)", "paired clips", "only reference right", "only this model right"].map((h, i) => el("th", {class: i === 0 ? "text" : null, text: h})))),
      el("tbody", {}, group.conditions.map((c) => {
        const p = paired(refSelect.value, name, c.name), mine = cell(name, c.name), theirs = cell(refSelect.value, c.name);
        const sig = p && p.p !== null && p.p < DATA.alpha ? (p.delta > 0 ? "sig-up" : "sig-down") : null;
        return el("tr", {}, el("td", {class: "text", text: c.name}), el("td", {}, cellText(mine)), el("td", {}, cellText(theirs)),
                  el("td", {class: sig, text: p ? `${p.delta >= 0 ? "+" : ""}${fmt(p.delta)}` : "—"}), el("td", {text: p ? pText(p.p) : "—"}),
                  el("td", {text: p ? p.n : "—"}), el("td", {text: p ? p.ref_only : "—"}), el("td", {text: p ? p.cand_only : "—"}));
      })))));
    const drawConfusion = () => {
      const m = group.confusion[`${name}|${condSelect.value}`];
      if (!m) { confusionBox.replaceChildren(el("p", {class: "muted", text: "no per-clip predictions stored for this cell"})); return; }
      const names = group.class_names.length ? group.class_names : m.map((_, i) => `class ${i}`);
      const max = Math.max(...m.flat(), 1);
      confusionBox.replaceChildren(el("div", {class: "scroll"}, el("table", {class: "confusion"},
        el("thead", {}, el("tr", {}, el("th", {class: "text", text: "true \\ predicted"}), names.map((n) => el("th", {text: n})))),
        el("tbody", {}, m.map((row, i) => el("tr", {}, el("td", {class: "text", text: names[i]}),
          // blue on the diagonal, vermillion off it (Okabe–Ito: apart under colour-vision deficiencies too)
          row.map((v, j) => el("td", {text: v, style: `background: rgba(${i === j ? "0,114,178" : "213,94,0"}, ${(v / max * 0.55).toFixed(2)})`}))))))));
    };
    refSelect.addEventListener("change", drawPaired);
    condSelect.addEventListener("change", drawConfusion);
    detail.replaceChildren(
      el("h2", {text: `Model ${name}`}),
      el("dl", {class: "facts"}, [["kind", model.kind], ["front-end", model.frontend], ["parameters", model.params],
        ["where from", model.origin], ["sha256", model.sha256], ...Object.entries(model.facts || {}).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v])]
        .flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v === null || v === undefined ? "—" : String(v)})])),
      el("h3", {text: "Paired comparison"}), el("div", {class: "controls"}, el("span", {text: "reference model:"}), refSelect), pairedBox,
      el("h3", {text: "Confusion matrix"}), el("div", {class: "controls"}, el("span", {text: "condition:"}), condSelect), confusionBox);
    drawPaired(); drawConfusion();
    detail.hidden = false;
    detail.scrollIntoView({block: "start"});
  }
  return root;
}

const main = document.getElementById("groups");
DATA.groups.forEach((g, i) => main.append(renderGroup(g, i)));
if (DATA.csv.length) {
  main.append(el("h2", {text: "Files"}), el("ul", {}, DATA.csv.map((href) => el("li", {}, el("a", {href, text: href.split("/").pop()})))));
}
document.body.dataset.ready = "true";
