// Toolbar and legend of the tsimcne_nb Explorer (an anywidget front-end).
//
// Python owns the state; this view draws it and reports what the user did with
// model.send({type: ...}). Class names and data-* attributes are stable because the
// browser tests select on them.

const CSS = `
.tsimcne-toolbar { font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px;
  display: flex; flex-direction: column; gap: 4px; width: 100%; }
.tsimcne-toolbar .tsimcne-row { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
.tsimcne-toolbar button { font-size: 12px; padding: 1px 8px; cursor: pointer; white-space: nowrap; }
.tsimcne-toolbar input[type=text] { font-size: 12px; padding: 1px 4px; }
.tsimcne-toolbar .tsimcne-swatch { display: inline-block; width: 10px; height: 10px;
  border-radius: 2px; margin-right: 4px; vertical-align: middle; border: 1px solid #0003; }
.tsimcne-toolbar .tsimcne-key { color: #888; font-size: 10px; margin-left: 3px; }
.tsimcne-toolbar .tsimcne-legend { display: flex; flex-wrap: wrap; gap: 2px 4px; align-items: center; }
.tsimcne-toolbar .tsimcne-legend-title { font-weight: bold; margin-right: 4px; }
.tsimcne-toolbar .tsimcne-legend-item { border: 1px solid transparent; background: none; padding: 0 4px; }
.tsimcne-toolbar .tsimcne-legend-item:hover { border-color: #999; }
.tsimcne-toolbar .tsimcne-colorbar { display: inline-block; width: 140px; height: 10px;
  vertical-align: middle; margin: 0 4px; border: 1px solid #0003; }
.tsimcne-toolbar .tsimcne-status { color: #333; }
.tsimcne-toolbar .tsimcne-status.tsimcne-error, .tsimcne-toolbar .tsimcne-query-error { color: #b00020; }
.tsimcne-explorer:fullscreen { background: var(--jp-layout-color0, white); padding: 8px;
  overflow: auto; }
`;

function injectStyle() {
  if (document.getElementById("tsimcne-toolbar-style")) return;
  const style = document.createElement("style");
  style.id = "tsimcne-toolbar-style";
  style.textContent = CSS;
  document.head.appendChild(style);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(text, title, cls, onClick) {
  const b = el("button", cls, text);
  b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

function swatch(color) {
  const s = el("span", "tsimcne-swatch");
  s.style.background = color;
  return s;
}

function isTextField(t) {
  return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT"
    || t.isContentEditable);
}

function render({ model, el: host }) {
  injectStyle();
  const root = el("div", "tsimcne-toolbar");
  // JupyterLab does not run its shortcuts (e.g. 1-6: markdown heading) for keys typed here
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  const send = (msg) => model.send(msg);

  // row 1: colour-by, tag buttons, new tag
  const row1 = el("div", "tsimcne-row");
  const colorLabel = el("label", null, "colour by ");
  const colorSelect = el("select", "tsimcne-color-by");
  colorSelect.addEventListener("change", () => {
    model.set("color_by", colorSelect.value);
    model.save_changes();
  });
  colorLabel.appendChild(colorSelect);
  const tagBox = el("span", "tsimcne-tags");
  const newTag = el("input", "tsimcne-new-tag");
  newTag.type = "text";
  newTag.placeholder = "new tag";
  newTag.size = 10;
  const addTag = button("+ tag", "tag the selection with the name typed on the left",
    "tsimcne-add-tag", () => {
      const name = newTag.value.trim();
      if (name) send({ type: "tag", name });
      newTag.value = "";
    });
  newTag.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); addTag.click(); }
  });
  row1.append(colorLabel, el("span", null, "tag selection:"), tagBox, newTag, addTag);

  // row 2: search, export, zoom, clear, full screen, status
  const row2 = el("div", "tsimcne-row");
  const query = el("input", "tsimcne-search");
  query.type = "text";
  query.placeholder = "find: blur > 2, label == x, tag:keep";
  query.size = 28;
  const find = button("find", "select the points that match (see Explorer.search)",
    "tsimcne-find", () => send({ type: "search", query: query.value }));
  query.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); find.click(); }
  });
  const matches = el("span", "tsimcne-matches");
  const exportPath = el("input", "tsimcne-export-path");
  exportPath.type = "text";
  exportPath.size = 14;
  exportPath.title = "file to write (.csv or .parquet), relative to the notebook";
  exportPath.addEventListener("change", () => {
    model.set("export_path", exportPath.value);
    model.save_changes();
  });
  const exportTags = button("export tags", "write the tagged points to the file named on the left",
    "tsimcne-export", () => send({ type: "export", path: exportPath.value, what: "tags" }));
  const exportSel = button("export selection", "write the selected points to the file named on the left",
    "tsimcne-export-selection",
    () => send({ type: "export", path: exportPath.value, what: "selection" }));
  const zoom = button("zoom to selection", "zoom the map to the selection (key z)", "tsimcne-zoom",
    () => send({ type: "zoom" }));
  const clear = button("clear", "clear the selection (key Escape)", "tsimcne-clear",
    () => send({ type: "clear" }));
  const full = button("full screen", "map, thumbnails and panels full screen",
    "tsimcne-fullscreen", () => toggleFullscreen());
  const status = el("span", "tsimcne-status");
  row2.append(query, find, matches, exportPath, exportTags, exportSel, zoom, clear, full, status);

  // row 3: legend
  const legend = el("div", "tsimcne-legend");
  root.append(row1, row2, legend);
  host.appendChild(root);

  function container() {
    return host.closest(".tsimcne-explorer") || root;
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else {
      container().requestFullscreen();
    }
  }

  // jupyter-scatter's own full-screen button would show the map alone: take it over so that
  // the thumbnails and panels stay beside the map
  let hooked = null;
  let pointerInside = false;
  const onCaptureClick = (e) => {
    const b = e.target.closest && e.target.closest('button[title="Full Screen"]');
    if (b && !root.contains(b)) {
      e.preventDefault();
      e.stopPropagation();
      toggleFullscreen();
    }
  };
  // Shift+drag draws a lasso on the map; JupyterLab's notebook would take a Shift+mousedown
  // as "extend the cell selection" and swallow the drag's mouse moves. The map has seen
  // the event by the time it bubbles here: keep it from the notebook.
  const onShiftDown = (e) => {
    if (e.shiftKey && e.target && e.target.tagName === "CANVAS") e.stopPropagation();
  };
  const onEnter = () => { pointerInside = true; };
  const onLeave = () => { pointerInside = false; };
  function hook() {
    const c = container();
    if (c === hooked || c === root) return;
    if (hooked) unhook();
    c.addEventListener("click", onCaptureClick, true);
    c.addEventListener("mousedown", onShiftDown);
    c.addEventListener("pointerenter", onEnter);
    c.addEventListener("pointerleave", onLeave);
    c.setAttribute("data-lm-suppress-shortcuts", "true");
    hooked = c;
  }
  function unhook() {
    if (!hooked) return;
    hooked.removeEventListener("click", onCaptureClick, true);
    hooked.removeEventListener("mousedown", onShiftDown);
    hooked.removeEventListener("pointerenter", onEnter);
    hooked.removeEventListener("pointerleave", onLeave);
    hooked = null;
  }
  const hookTimer = setInterval(hook, 300);
  hook();

  // number keys tag, Escape clears, z zooms: while the pointer is over this explorer
  const onKey = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || isTextField(e.target)) return;
    const c = container();
    const inside = pointerInside || (document.activeElement && c.contains(document.activeElement))
      || document.fullscreenElement === c;
    if (!inside) return;
    let handled = true;
    if (/^[1-9]$/.test(e.key)) {
      const name = model.get("tags")[Number(e.key) - 1];
      if (name === undefined) handled = false;
      else send({ type: "tag", name, key: e.key });
    } else if (e.key === "Escape") {
      send({ type: "clear" });
    } else if (e.key === "z") {
      send({ type: "zoom" });
    } else {
      handled = false;
    }
    if (handled) {
      // before JupyterLab's command-mode shortcuts (1-6 would turn the cell into a heading)
      e.preventDefault();
      e.stopPropagation();
    }
  };
  window.addEventListener("keydown", onKey, true);

  function draw() {
    const options = model.get("color_options");
    const current = model.get("color_by");
    colorSelect.replaceChildren(...options.map((o) => {
      const opt = el("option", null, o);
      opt.value = o;
      return opt;
    }));
    colorSelect.value = current;

    const colors = model.get("tag_colors");
    tagBox.replaceChildren(...model.get("tags").map((name, i) => {
      const b = button("", `tag the selection '${name}'` + (i < 9 ? ` (key ${i + 1})` : ""),
        "tsimcne-tag-button", () => send({ type: "tag", name }));
      b.dataset.tag = name;
      b.append(swatch(colors[name] || "#999"), el("span", null, name));
      if (i < 9) b.append(el("span", "tsimcne-key", String(i + 1)));
      return b;
    }));

    const nSel = model.get("n_selected");
    zoom.disabled = nSel === 0;
    clear.disabled = nSel === 0;
    exportSel.disabled = nSel === 0;
    if (document.activeElement !== exportPath) exportPath.value = model.get("export_path");
    if (document.activeElement !== query) query.value = model.get("query");
    const err = model.get("query_error");
    const n = model.get("n_matches");
    matches.className = err ? "tsimcne-matches tsimcne-query-error" : "tsimcne-matches";
    matches.textContent = err ? err : (n >= 0 ? `${n} found` : "");
    root.dataset.nMatches = String(n);
    root.dataset.colorBy = current;
    status.textContent = model.get("status");
    status.className = model.get("status_error") ? "tsimcne-status tsimcne-error" : "tsimcne-status";

    const title = el("span", "tsimcne-legend-title", model.get("legend_title"));
    const items = model.get("legend").map((it) => {
      const b = button("", `select all '${it.name}' (shift-click adds)`, "tsimcne-legend-item",
        (e) => send({ type: "legend", name: it.name, add: e.shiftKey }));
      b.dataset.name = it.name;
      b.append(swatch(it.color), el("span", null, `${it.name} (${it.count})`));
      return b;
    });
    const bar = model.get("colorbar");
    const parts = [title, ...items];
    if (bar && bar.stops) {
      const grad = el("span", "tsimcne-colorbar");
      grad.style.background = `linear-gradient(to right, ${bar.stops.join(", ")})`;
      parts.push(el("span", null, Number(bar.min).toPrecision(3)), grad,
        el("span", null, Number(bar.max).toPrecision(3)));
    }
    legend.replaceChildren(...parts);
  }

  const names = ["tags", "tag_colors", "color_options", "color_by", "legend", "legend_title",
    "colorbar", "query", "query_error", "n_matches", "n_selected", "export_path", "status",
    "status_error"];
  for (const name of names) model.on(`change:${name}`, draw);
  draw();
  return () => {
    for (const name of names) model.off(`change:${name}`, draw);
    window.removeEventListener("keydown", onKey, true);
    clearInterval(hookTimer);
    unhook();
  };
}

export default { render };
