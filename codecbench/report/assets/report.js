// codecbench's HTML report: renders the inlined data (leaderboard, tables, SVG charts, model details).
// No library and no network: everything the page needs is in this file and the JSON element #data.
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const COLOURS = ["#2459c2", "#d1495b", "#2a9d5c", "#e08e0b", "#7b4fc9", "#1b9aaa", "#8c564b", "#c2185b",
                 "#5f7d1a", "#444e66", "#ef6c00", "#00838f", "#6d4c41", "#ad1457", "#3949ab", "#7cb342"];
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
const half = (c) => (c && c.lo !== null) ? (c.hi - c.lo) / 2 : null;
const cellText = (c) => c ? [fmt(c.acc), el("span", {class: "ci", text: ` ±${fmt(half(c), 3)}`})] : ["—"];
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
    el("th", {class: "sortable" + (c.text ? " text" : ""), "data-key": c.key, scope: "col",
              onclick: () => sortBy(i)}, c.label)))), tbody);
  let order = rows.slice();
  function draw() {
    tbody.replaceChildren(...order.map((r) => el("tr", {"data-model": r.name, hidden: r.hidden},
      columns.map((c) => el("td", {class: c.text ? "text" : null, "data-value": c.value(r) ?? ""}, c.render(r))))));
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
function chart({width = 560, height = 300, xs, xLabel, yLabel, yRange, logX = false, series, id, xTicks}) {
  // series: [{name, colour, points: [{x, y, lo, hi, tip}], band: bool, lines: [[i, j]] (pairs of point indices)}]
  const m = {l: 48, r: 12, t: 10, b: 36};
  const fx = logX ? Math.log : (v) => v;
  const [x0, x1] = [Math.min(...xs.map(fx)), Math.max(...xs.map(fx))];
  const sx = (v) => m.l + (x1 === x0 ? 0.5 : (fx(v) - x0) / (x1 - x0)) * (width - m.l - m.r);
  const [y0, y1] = yRange;
  const sy = (v) => height - m.b - (v - y0) / (y1 - y0) * (height - m.t - m.b);
  const svg = el("svg:svg", {width, height, viewBox: `0 0 ${width} ${height}`, id, role: "img"});
  for (let k = 0; k <= 4; k++) {
    const v = y0 + (y1 - y0) * k / 4;
    svg.append(el("svg:line", {class: "grid", x1: m.l, x2: width - m.r, y1: sy(v), y2: sy(v)}),
               el("svg:text", {x: m.l - 6, y: sy(v) + 4, "text-anchor": "end", text: v.toFixed(2)}));
  }
  for (const t of (xTicks || xs)) {
    svg.append(el("svg:text", {x: sx(t), y: height - m.b + 14, "text-anchor": "middle", text: String(t)}));
  }
  svg.append(el("svg:line", {class: "axis", x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b}),
             el("svg:text", {x: (width + m.l) / 2, y: height - 4, "text-anchor": "middle", text: xLabel}),
             el("svg:text", {x: 12, y: height / 2, transform: `rotate(-90 12 ${height / 2})`, "text-anchor": "middle",
                             text: yLabel}));
  const legend = el("div", {class: "legend"});
  for (const s of series) {
    const g = el("svg:g", {"data-series": s.name});
    const pts = s.points.filter((p) => p.y !== null && p.y !== undefined);
    if (s.band && pts.length > 1) {
      const top = pts.map((p) => `${sx(p.x)},${sy(p.hi)}`), bottom = pts.slice().reverse().map((p) => `${sx(p.x)},${sy(p.lo)}`);
      g.append(el("svg:polygon", {points: top.concat(bottom).join(" "), fill: s.colour, "fill-opacity": 0.12}));
    }
    for (const [i, j] of (s.lines || [])) {
      const a = s.points[i], b = s.points[j];
      if (a && b && a.y !== null && b.y !== null) {
        g.append(el("svg:line", {x1: sx(a.x), y1: sy(a.y), x2: sx(b.x), y2: sy(b.y), stroke: s.colour,
                                 "stroke-width": 1.6, "stroke-dasharray": s.dashed ? "5 3" : null}));
      }
    }
    for (const p of pts) {
      if (p.lo !== null && p.lo !== undefined && !s.band) {
        g.append(el("svg:line", {x1: sx(p.x), x2: sx(p.x), y1: sy(p.lo), y2: sy(p.hi), stroke: s.colour, "stroke-opacity": 0.5}));
      }
      g.append(el("svg:circle", {cx: sx(p.x), cy: sy(p.y), r: 3.5, fill: s.colour, class: "point",
                                 onmousemove: (e) => showTip(e, p.tip), onmouseleave: hideTip}));
    }
    svg.append(g);
    legend.append(el("button", {type: "button", "aria-pressed": "true", "data-series": s.name, onclick: (e) => {
      const on = e.currentTarget.getAttribute("aria-pressed") !== "true";
      e.currentTarget.setAttribute("aria-pressed", String(on));
      g.classList.toggle("hidden", !on);
    }}, el("span", {class: "swatch", style: `background:${s.colour}`}), s.name));
  }
  return el("div", {class: "figure"}, svg, legend);
}

// ---------------------------------------------------------------------------- one group (dataset x matrix)
function renderGroup(group, gi) {
  const root = el("section", {class: "group", id: `group-${gi}`});
  const modelNames = group.models.map((m) => m.name);
  const cell = (model, cond) => group.cells[`${model}|${cond}`];
  const paired = (ref, model, cond) => group.paired[`${ref}|${model}|${cond}`];
  const colour = (name) => COLOURS[modelNames.indexOf(name) % COLOURS.length];
  const cats = Object.keys(group.categories);
  root.append(el("h2", {text: `${group.dataset.name || "?"} · ${group.dataset.split || "?"} split · matrix ${group.matrix || "?"}`}),
              el("p", {class: "muted", text: `Run ${group.run_id || "?"} of ${group.started || "?"}` +
                 (group.composed_from.length > 1 ? `, composed from runs ${group.composed_from.join(", ")} (the latest result of each cell)` : "") +
                 `, git ${(group.git_commit || "?").slice(0, 10)}; dataset fingerprint ${(group.dataset.fingerprint || "?").slice(0, 12)}.`}));

  // leaderboard
  const swept = Object.keys(group.sweeps);
  const columns = [
    {key: "model", label: "model", text: true, value: (r) => r.name,
     render: (r) => el("button", {class: "link model", type: "button", "data-model": r.name, onclick: () => showDetail(r.name)}, r.name)},
    {key: "kind", label: "kind", text: true, value: (r) => r.kind, render: (r) => r.kind},
    {key: "frontend", label: "front-end", text: true, value: (r) => r.frontend, render: (r) => r.frontend},
    {key: "params", label: "parameters", value: (r) => r.params, render: (r) => r.params ? Number(r.params).toLocaleString("en") : "—"},
    {key: "origin", label: "where from", text: true, value: (r) => r.origin, render: (r) => r.origin},
    {key: "wav", label: "uncoded", value: (r) => r.wav && r.wav.acc, render: (r) => cellText(r.wav)},
    ...cats.map((cat) => ({key: `cat:${cat}`, label: `${cat} mean`, value: (r) => r[`cat:${cat}`] && r[`cat:${cat}`].acc,
                           render: (r) => cellText(r[`cat:${cat}`])})),
    {key: "worst", label: "worst condition", value: (r) => r.worst && r.worst.acc,
     render: (r) => r.worst ? [cellText(r.worst), el("span", {class: "ci", text: ` ${r.worst.condition}`})] : "—"},
    ...swept.flatMap((codec) => [
      {key: `retained:${codec}`, label: `${codec} retained`, value: (r) => r.sweeps[codec] && r.sweeps[codec].retained,
       render: (r) => r.sweeps[codec] ? [fmt(r.sweeps[codec].retained), el("span", {class: "ci", text: ` [${fmt(r.sweeps[codec].retained_lo)}, ${fmt(r.sweeps[codec].retained_hi)}]`})] : "—"},
      {key: `breakeven:${codec}`, label: `${codec} break-even kbps`, value: (r) => r.sweeps[codec] ? (r.sweeps[codec].break_even ?? Infinity) : null,
       render: (r) => r.sweeps[codec] ? `${r.sweeps[codec].break_even ?? "never"} [${r.sweeps[codec].break_even_lo ?? "never"}, ${r.sweeps[codec].break_even_hi ?? "never"}]` : "—"}]),
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
              el("p", {class: "muted", text: "Category means pool the category's conditions (their clips and correct answers, so the interval is a Wilson interval of the pooled proportion); retained accuracy and break-even bit rate (the lowest rate from which on accuracy stays within 0.02 of the original's) come with paired-bootstrap intervals."}),
              el("div", {class: "controls"}, filterName, filterKind), el("div", {class: "scroll"}, board));

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
                                   title: p ? `vs ${reference}: ${p.delta >= 0 ? "+" : ""}${fmt(p.delta)}, p = ${pText(p.p)}` : null}, cellText(x));
                }));
    });
    return el("div", {class: "scroll"}, el("table", {id}, el("thead", {}, head), el("tbody", {}, rows)));
  };
  const marks = `Best of each row bold; * a significant change against ${reference} (exact McNemar, p < ${DATA.alpha}; green up, red down); † a cell from an earlier run.`;
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
                    return el("td", {class: sig, title: `p = ${pText(p.p)}, n = ${p.n}`, text: `${p.delta >= 0 ? "+" : ""}${fmt(p.delta)}`});
                  })))))));
  }

  // Figure 2: change against the base per fine-tuned segment, measured segments only
  const segs = group.models.map((m) => [/^finetuned_seg(\d+)$/.exec(m.name), m.name]).filter(([r]) => r)
                 .map(([r, name]) => [Number(r[1]), name]).sort((a, b) => a[0] - b[0]);
  if (segs.length && modelNames.includes(reference)) {
    const series = group.conditions.map((cond, i) => {
      const base = cell(reference, cond.name);
      const points = segs.map(([k, name]) => {
        const c = cell(name, cond.name);
        if (!c || !base) return {x: k, y: null};
        return {x: k, y: c.acc - base.acc, lo: c.lo - base.acc, hi: c.hi - base.acc,
                tip: `${name} on ${cond.name}\naccuracy ${fmt(c.acc)} [${fmt(c.lo)}, ${fmt(c.hi)}], n = ${c.n}\nchange vs ${reference}: ${fmt(c.acc - base.acc)}`};
      });
      // a line joins neighbouring segments only: a gap in the segments is not drawn over
      const lines = points.slice(1).map((p, j) => [j, j + 1]).filter(([a, b]) => points[b].x - points[a].x === 1);
      return {name: cond.name, colour: COLOURS[i % COLOURS.length], points, lines};
    });
    const ys = series.flatMap((s) => s.points.flatMap((p) => p.y === null ? [] : [p.lo, p.hi]));
    root.append(el("h3", {text: "Figure 2: accuracy change against the base per fine-tuned segment"}),
                chart({xs: segs.map(([k]) => k), xLabel: "fine-tuned segment", yLabel: `accuracy − ${reference}`,
                       yRange: [Math.min(0, ...ys) - 0.02, Math.max(0, ...ys) + 0.02], series, id: `figure2-${gi}`}));
  }

  // accuracy against bit rate, per swept codec; the models to show are chosen (16 bands at once are unreadable)
  if (swept.length) {
    const shown = new Set(modelNames.slice(0, Math.min(4, modelNames.length)));
    const holder = el("div");
    const pick = el("div", {class: "controls"}, el("span", {class: "muted", text: "models shown:"}),
      modelNames.map((name) => el("label", {}, el("input", {type: "checkbox", checked: shown.has(name), "data-model": name,
        onchange: (e) => { e.target.checked ? shown.add(name) : shown.delete(name); drawSweeps(); }}), ` ${name}`)));
    const drawSweeps = () => holder.replaceChildren(...swept.map((codec) => {
      const pts = group.sweeps[codec];
      const series = modelNames.filter((n) => shown.has(n)).map((name) => ({
        name, colour: colour(name), band: true, lines: pts.slice(1).map((_, j) => [j, j + 1]),
        points: pts.map((p) => { const c = cell(name, p.condition); return c ? {x: p.kbps, y: c.acc, lo: c.lo, hi: c.hi,
          tip: `${name} on ${p.condition}\naccuracy ${fmt(c.acc)} [${fmt(c.lo)}, ${fmt(c.hi)}], n = ${c.n}`} : {x: p.kbps, y: null}; })}));
      return el("div", {class: "figure"}, el("h3", {text: codec}),
                chart({xs: pts.map((p) => p.kbps), xLabel: "bit rate (kbps, log)", yLabel: "accuracy", logX: true,
                       yRange: [0, 1], series, id: `sweep-${gi}-${codec}`}));
    }));
    drawSweeps();
    root.append(el("h2", {text: "Accuracy against bit rate"}), pick, holder);
  }

  // codec facts, provenance, files
  if (group.codec_facts.length) {
    const khz = (v) => v === null || v === undefined ? "—" : String(v).split("/").map((x) => `${+(Number(x) / 1000).toFixed(2)} kHz`).join(" / ");
    root.append(el("h3", {text: "Codec facts (measured during the run on its own clips)"}),
      el("table", {}, el("thead", {}, el("tr", {}, ["condition", "achieved kbps", "bandwidth kept", "source bandwidth", "source rate", "codec rate", "library"].map((h, i) => el("th", {class: i === 0 || i === 6 ? "text" : null, text: h})))),
        el("tbody", {}, group.codec_facts.map((f) => el("tr", {}, el("td", {class: "text", text: f.condition}), el("td", {text: fmt(f.achieved_kbps, 1)}),
          el("td", {text: khz(f.bandwidth_hz)}), el("td", {text: khz(f.source_bandwidth_hz)}), el("td", {text: khz(f.source_sample_rate)}),
          el("td", {text: khz(f.codec_sample_rate)}), el("td", {class: "text", text: f.library || "—"}))))));
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
    const drawPaired = () => pairedBox.replaceChildren(el("table", {class: "paired"},
      el("thead", {}, el("tr", {}, ["condition", "this model", refSelect.value, "change", "p (McNemar)", "paired clips", "only reference right", "only this model right"].map((h, i) => el("th", {class: i === 0 ? "text" : null, text: h})))),
      el("tbody", {}, group.conditions.map((c) => {
        const p = paired(refSelect.value, name, c.name), mine = cell(name, c.name), theirs = cell(refSelect.value, c.name);
        const sig = p && p.p !== null && p.p < DATA.alpha ? (p.delta > 0 ? "sig-up" : "sig-down") : null;
        return el("tr", {}, el("td", {class: "text", text: c.name}), el("td", {}, cellText(mine)), el("td", {}, cellText(theirs)),
                  el("td", {class: sig, text: p ? `${p.delta >= 0 ? "+" : ""}${fmt(p.delta)}` : "—"}), el("td", {text: p ? pText(p.p) : "—"}),
                  el("td", {text: p ? p.n : "—"}), el("td", {text: p ? p.ref_only : "—"}), el("td", {text: p ? p.cand_only : "—"}));
      }))));
    const drawConfusion = () => {
      const m = group.confusion[`${name}|${condSelect.value}`];
      if (!m) { confusionBox.replaceChildren(el("p", {class: "muted", text: "no per-clip predictions stored for this cell"})); return; }
      const names = group.class_names.length ? group.class_names : m.map((_, i) => `class ${i}`);
      const max = Math.max(...m.flat(), 1);
      confusionBox.replaceChildren(el("table", {class: "confusion"},
        el("thead", {}, el("tr", {}, el("th", {class: "text", text: "true \\ predicted"}), names.map((n) => el("th", {text: n})))),
        el("tbody", {}, m.map((row, i) => el("tr", {}, el("td", {class: "text", text: names[i]}),
          row.map((v, j) => el("td", {text: v, style: `background: rgba(${i === j ? "36,89,194" : "209,73,91"}, ${(v / max * 0.6).toFixed(2)})`})))))));
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
