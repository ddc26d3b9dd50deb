// Augmentation gallery front-end (anywidget): one row per (image, preset) with the
// original and N augmented views, all sent from Python as PNG data URIs.
// Class names and data-* attributes are stable: the browser tests use them.

const CSS = `
.tsimcne-gallery { font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px; }
.tsimcne-gallery table { border-collapse: collapse; }
.tsimcne-gallery td, .tsimcne-gallery th { padding: 2px 3px; text-align: left; vertical-align: middle; }
.tsimcne-gallery th { font-weight: normal; color: #444; white-space: nowrap; }
.tsimcne-gallery img { image-rendering: pixelated; display: block; }
.tsimcne-gallery .tsimcne-original img { outline: 2px solid #888; }
.tsimcne-gallery .tsimcne-note { color: #555; margin-bottom: 4px; }
.tsimcne-gallery tr.tsimcne-active th { color: #000; font-weight: bold; }
.tsimcne-gallery tr.tsimcne-active th::before { content: "\\25B6  "; color: #e4572e; }
`;

function injectStyle() {
  if (document.getElementById("tsimcne-gallery-style")) return;
  const style = document.createElement("style");
  style.id = "tsimcne-gallery-style";
  style.textContent = CSS;
  document.head.appendChild(style);
}

function render({ model, el }) {
  injectStyle();
  const root = document.createElement("div");
  root.className = "tsimcne-gallery";
  el.appendChild(root);

  function draw() {
    const rows = model.get("rows") || [];
    const size = model.get("thumbnail_size");
    root.dataset.generation = String(model.get("generation"));
    root.dataset.nRows = String(rows.length);
    const note = document.createElement("div");
    note.className = "tsimcne-note";
    note.textContent = model.get("note");
    const table = document.createElement("table");
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.className = "tsimcne-gallery-row" + (row.active ? " tsimcne-active" : "");
      tr.dataset.preset = row.preset;
      tr.dataset.active = row.active ? "1" : "0";
      tr.dataset.index = String(row.index);
      const th = document.createElement("th");
      th.textContent = `${row.preset} \u00b7 #${row.index} ${row.label}`;
      tr.appendChild(th);
      const orig = document.createElement("td");
      orig.className = "tsimcne-original";
      const oimg = document.createElement("img");
      oimg.src = row.original;
      oimg.width = size;
      oimg.height = size;
      oimg.alt = "original";
      orig.appendChild(oimg);
      tr.appendChild(orig);
      row.views.forEach((src, k) => {
        const td = document.createElement("td");
        td.className = "tsimcne-view";
        const img = document.createElement("img");
        img.src = src;
        img.width = size;
        img.height = size;
        img.alt = `${row.preset} view ${k + 1}`;
        img.dataset.preset = row.preset;
        img.dataset.view = String(k);
        td.appendChild(img);
        tr.appendChild(td);
      });
      table.appendChild(tr);
    }
    root.replaceChildren(note, table);
  }

  const names = ["rows", "thumbnail_size", "note", "generation"];
  for (const name of names) model.on(`change:${name}`, draw);
  draw();
  return () => {
    for (const name of names) model.off(`change:${name}`, draw);
  };
}

export default { render };
