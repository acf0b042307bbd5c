// protoseg's net viewer: pan and zoom, find layers by name, click a node to see its layers.
// Reads the JSON in #ps-data (protoseg/viewer/__init__.py's page_data) and Graphviz's SVG, whose
// node groups have the drawing's node ids. Every name goes into the page as text, never markup.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("ps-data").textContent);
  const svg = document.getElementById("ps-svg");
  const graph = document.getElementById("ps-graph");
  const panel = document.getElementById("ps-panel");
  const search = document.getElementById("ps-search");
  const count = document.getElementById("ps-count");
  const list = document.getElementById("ps-matches");
  const tableBox = document.getElementById("ps-table");
  const groups = {};
  for (const g of svg.querySelectorAll("g.node")) groups[g.id] = g;

  // ---- small helpers ------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const shape = (s) => s.join("\u00d7");
  const names = (id) => {
    const n = data.nodes[id];
    return n.layers ? n.layers.map((l) => l.name) : [n.blob];
  };

  document.getElementById("ps-name").textContent = data.name;
  const t = data.totals.text;
  document.getElementById("ps-summary").textContent =
    `${data.layers} layers in ${Object.values(data.nodes).filter((n) => n.layers).length} nodes ` +
    `(${data.folded} in place, folded) \u00b7 params ${t[0]} \u00b7 MACs ${t[1]} \u00b7 activations ${t[2]}`;

  // ---- pan and zoom: the viewBox moves; the SVG keeps the page's size ------------------------
  const base = svg.viewBox.baseVal;
  const home = { x: base.x, y: base.y, w: base.width, h: base.height };
  let view = Object.assign({}, home);
  function show() { svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`); }
  function toSvg(cx, cy) {
    const p = svg.createSVGPoint();
    p.x = cx; p.y = cy;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }
  function zoom(factor, cx, cy) {        // factor < 1 zooms in, about the screen point (cx, cy)
    const w = view.w * factor;
    if (w < 20 || w > home.w * 20) return;
    const p = toSvg(cx, cy);
    view = { x: p.x - (p.x - view.x) * factor, y: p.y - (p.y - view.y) * factor,
             w: w, h: view.h * factor };
    show();
  }
  function zoomCentre(factor) {
    const r = graph.getBoundingClientRect();
    zoom(factor, r.left + r.width / 2, r.top + r.height / 2);
  }
  function focus(id) {                  // centre a node, zoomed in enough to read it
    const r = groups[id].getBoundingClientRect();
    const c = toSvg(r.left + r.width / 2, r.top + r.height / 2);
    const box = graph.getBoundingClientRect();
    const k = Math.max(svg.getScreenCTM().a, 1.3);       // screen pixels per SVG unit
    view = { x: c.x - box.width / k / 2, y: c.y - box.height / k / 2,
             w: box.width / k, h: box.height / k };
    show();
  }
  graph.addEventListener("wheel", (e) => {
    e.preventDefault();
    zoom(Math.pow(1.0015, e.deltaY), e.clientX, e.clientY);
  }, { passive: false });
  let drag = null;
  graph.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, view: Object.assign({}, view), moved: false };
  });
  window.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    graph.classList.add("ps-dragging");
    const k = svg.getScreenCTM().a;
    view.x = drag.view.x - dx / k;
    view.y = drag.view.y - dy / k;
    show();
  });
  window.addEventListener("pointerup", () => {
    graph.classList.remove("ps-dragging");
    if (drag && drag.moved) setTimeout(() => { drag = null; }, 0);   // the click that follows is a drag's end
    else drag = null;
  });
  document.getElementById("ps-zoom-in").onclick = () => zoomCentre(1 / 1.4);
  document.getElementById("ps-zoom-out").onclick = () => zoomCentre(1.4);
  document.getElementById("ps-fit").onclick = () => { view = Object.assign({}, home); show(); };

  // ---- the panel: each layer of the clicked node -------------------------------------------
  let selected = null;
  function select(id, centre) {
    if (selected) groups[selected].classList.remove("ps-selected");
    selected = id;
    groups[id].classList.add("ps-selected");
    if (centre) focus(id);
    const n = data.nodes[id];
    panel.replaceChildren();
    if (!n.layers) {
      panel.append(el("section", {}, el("h2", {}, n.blob),
                      el("p", {}, "net output ", el("b", { class: "ps-shape" }, shape(n.shape)))));
      return;
    }
    n.layers.forEach((l, i) => panel.append(layerSection(l, i)));
  }
  function rows(table, pairs) {
    for (const [k, v] of pairs) table.append(el("tr", {}, el("th", {}, k), el("td", { class: "ps-num" }, v)));
    return table;
  }
  function layerSection(l, i) {
    const s = el("section", { class: "ps-layer" });
    s.append(el("h2", {}, (i ? "+ " : "") + l.name),
             el("div", { class: "ps-sub" }, l.type + (l.line ? `, line ${l.line}` : "") +
                (i ? ", in place, folded into this node" : "")));
    if (l.params.length) s.append(el("h3", {}, "parameters"), el("pre", {}, l.params.join("\n")));
    const io = el("table");
    for (const [b, sh] of l.bottoms) io.append(el("tr", {}, el("td", {}, "bottom"), el("td", {}, b), el("td", { class: "ps-shape" }, shape(sh))));
    for (const [b, sh] of l.tops) io.append(el("tr", {}, el("td", {}, "top"), el("td", {}, b), el("td", { class: "ps-shape" }, shape(sh))));
    s.append(el("h3", {}, "blobs"), io);
    const c = l.cost.text;
    s.append(el("h3", {}, "cost"), rows(el("table"), [["params", c[0]], ["MACs", c[1]], ["activations", c[2]]]));
    const rf = el("table", {}, el("tr", {}, el("th", {}, "top"), el("th", {}, "of"), el("th", {}, "axis"),
                                     el("th", {}, "stride"), el("th", {}, "offset"), el("th", {}, "rf")));
    let any = false;
    for (const [top, , maps] of l.tops)
      for (const [input, axes] of Object.entries(maps))
        for (const [axis, m] of Object.entries(axes)) {
          any = true;
          rf.append(el("tr", {}, el("td", {}, top), el("td", {}, input), el("td", {}, axis),
                       ...m.map((x) => el("td", { class: "ps-num" }, x))));
        }
    if (any) s.append(el("h3", {}, "receptive field"), rf);
    if (l.misaligned) s.append(el("p", { class: "ps-warn" }, "its bottoms do not line up in the input (see protoseg check)"));
    if (l.arithmetic.length) s.append(el("h3", {}, "shape arithmetic"), el("pre", {}, l.arithmetic.join("\n")));
    return s;
  }
  svg.addEventListener("click", (e) => {
    if (drag && drag.moved) return;
    const g = e.target.closest("g.node");
    if (g) select(g.id, false);
  });

  // ---- find layers by name ------------------------------------------------------------------
  let matches = [], current = -1;
  function find() {
    const q = search.value.trim().toLowerCase();
    for (const g of Object.values(groups)) g.classList.remove("ps-match");
    list.replaceChildren();
    matches = [];
    current = -1;
    svg.classList.toggle("ps-searching", q !== "");
    if (!q) { count.textContent = ""; list.hidden = true; return; }
    for (const id of Object.keys(data.nodes))
      for (const name of names(id))
        if (name.toLowerCase().includes(q)) {
          matches.push([id, name]);
          groups[id].classList.add("ps-match");
        }
    count.textContent = matches.length === 1 ? "1 layer" : `${matches.length} layers`;
    matches.slice(0, 200).forEach(([id, name], k) => {
      const li = el("li", {}, name);
      li.onclick = () => { current = k; pick(); };
      list.append(li);
    });
    list.hidden = matches.length === 0;
  }
  function pick() {
    [...list.children].forEach((li, k) => li.classList.toggle("ps-current", k === current));
    select(matches[current][0], true);
  }
  search.addEventListener("input", find);
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && matches.length) { current = (current + 1) % matches.length; pick(); }
    if (e.key === "Escape") { search.value = ""; find(); }
  });
  search.addEventListener("blur", () => setTimeout(() => { list.hidden = true; }, 200));
  search.addEventListener("focus", () => { list.hidden = matches.length === 0; });

  // ---- the table: every layer and its cost, as Netscope's analyzer listed them ---------------
  const layerRows = [];
  for (const [id, n] of Object.entries(data.nodes))
    for (const l of n.layers || []) layerRows.push([id, l]);
  const columns = [
    ["layer", (l) => l.name], ["type", (l) => l.type],
    ["top shape", (l) => l.tops.map((x) => shape(x[1])).join(", ")],
    ["params", (l) => l.cost.params, (l) => l.cost.text[0]],
    ["MACs", (l) => l.cost.macs, (l) => l.cost.text[1]],
    ["activations", (l) => l.cost.activation_bytes, (l) => l.cost.text[2]],
  ];
  let order = null;
  function drawTable() {
    const sorted = layerRows.slice();
    if (order) sorted.sort((a, b) => {
      const x = columns[order.col][1](a[1]), y = columns[order.col][1](b[1]);
      return (x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1) * order.dir;
    });
    const head = el("tr");
    columns.forEach(([name], k) => {
      const th = el("th", {}, name + (order && order.col === k ? (order.dir > 0 ? " \u25b2" : " \u25bc") : ""));
      th.onclick = () => { order = { col: k, dir: order && order.col === k ? -order.dir : (k > 2 ? -1 : 1) }; drawTable(); };
      head.append(th);
    });
    const body = el("tbody");
    for (const [id, l] of sorted) {
      const tr = el("tr", {}, ...columns.map(([, value, text], k) =>
        el("td", k > 2 ? { class: "ps-num" } : {}, (text || value)(l))));
      tr.onclick = () => { toggleTable(false); select(id, true); };
      body.append(tr);
    }
    const foot = el("tfoot", {}, el("tr", {}, el("td", {}, "total"), el("td"), el("td"),
      ...data.totals.text.map((x) => el("td", { class: "ps-num" }, x))));
    tableBox.replaceChildren(el("table", {}, el("thead", {}, head), body, foot));
    if (data.totals.unknown.length)
      tableBox.append(el("p", {}, "no cost rule (counted as 0 in the total): " + data.totals.unknown.join(", ")));
  }
  function toggleTable(on) {
    tableBox.hidden = !on;
    if (on) drawTable();
  }
  document.getElementById("ps-table-toggle").onclick = () => toggleTable(tableBox.hidden);

  // ---- keys ---------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.target === search) return;
    if (e.key === "/") { e.preventDefault(); search.focus(); }
    else if (e.key === "+" || e.key === "=") zoomCentre(1 / 1.4);
    else if (e.key === "-") zoomCentre(1.4);
    else if (e.key === "0") { view = Object.assign({}, home); show(); }
    else if (e.key === "t") toggleTable(tableBox.hidden);
  });
  show();
})();
