// Thumbnail panel of the tsimcne_nb Explorer (an anywidget front-end).
//
// The Python side owns all state (selection, page, mode) and sends only the
// current page's thumbnails as PNG data URIs in `items`; this view just draws
// them and reports clicks / paging back. Class names and data-* attributes are
// stable because the browser tests select on them.

const CSS = `
.tsimcne-panel { font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px;
  display: flex; flex-direction: column; gap: 6px; min-width: 260px; }
.tsimcne-panel .tsimcne-bar { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
.tsimcne-panel button { font-size: 12px; padding: 1px 8px; cursor: pointer; }
.tsimcne-panel button[aria-pressed="true"] { font-weight: bold; }
.tsimcne-panel .tsimcne-grid { display: grid; gap: 4px; overflow-y: auto; align-content: start;
  flex: 1 1 auto; min-height: 0; }
.tsimcne-panel .tsimcne-thumb { display: flex; flex-direction: column; align-items: center;
  cursor: pointer; border: 2px solid transparent; border-radius: 3px; padding: 1px; }
.tsimcne-panel .tsimcne-thumb.tsimcne-focused { border-color: #e4572e; }
.tsimcne-panel .tsimcne-thumb img { image-rendering: pixelated; display: block; }
.tsimcne-panel .tsimcne-caption { max-width: 100%; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; color: #444; font-size: 10px; }
.tsimcne-panel .tsimcne-empty { color: #777; padding: 12px 0; }
`;

function injectStyle() {
  if (document.getElementById("tsimcne-panel-style")) return;
  const style = document.createElement("style");
  style.id = "tsimcne-panel-style";
  style.textContent = CSS;
  document.head.appendChild(style);
}

function button(text, title, onClick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

function render({ model, el }) {
  injectStyle();
  const root = document.createElement("div");
  root.className = "tsimcne-panel";
  const bar = document.createElement("div");
  bar.className = "tsimcne-bar";
  const status = document.createElement("span");
  status.className = "tsimcne-status";
  const prev = button("\u2039", "previous page", () => setPage(model.get("page") - 1));
  prev.className = "tsimcne-prev";
  const next = button("\u203a", "next page", () => setPage(model.get("page") + 1));
  next.className = "tsimcne-next";
  const pageMode = button("pages", "show the selection page by page", () => setMode("page"));
  pageMode.className = "tsimcne-mode-page";
  const sampleMode = button("sample", "show a random sample of the selection", () => setMode("sample"));
  sampleMode.className = "tsimcne-mode-sample";
  const resample = button("\u21bb", "draw another sample", () => {
    model.set("resample", model.get("resample") + 1);
    model.save_changes();
  });
  resample.className = "tsimcne-resample";
  // jump to a page: type its number
  const pageField = document.createElement("input");
  pageField.type = "number";
  pageField.min = "1";
  pageField.className = "tsimcne-page-field";
  pageField.title = "go to page";
  pageField.style.width = "4em";
  pageField.addEventListener("change", () => setPage(Number(pageField.value) - 1));
  pageField.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      setPage(Number(pageField.value) - 1);
    }
  });
  const order = document.createElement("select");
  order.className = "tsimcne-order";
  order.title = "order of the thumbnails";
  for (const [value, text] of [["index", "dataset order"], ["distance", "nearest centre first"]]) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    order.appendChild(o);
  }
  order.addEventListener("change", () => {
    model.set("order", order.value);
    model.save_changes();
  });
  const sizeInput = document.createElement("input");
  sizeInput.type = "range";
  sizeInput.min = "24";
  sizeInput.max = "160";
  sizeInput.step = "8";
  sizeInput.className = "tsimcne-size";
  sizeInput.title = "thumbnail size";
  sizeInput.addEventListener("input", () => {
    model.set("thumbnail_size", Number(sizeInput.value));
    model.save_changes();
  });
  bar.append(status, prev, pageField, next, pageMode, sampleMode, resample, order, sizeInput);
  const grid = document.createElement("div");
  grid.className = "tsimcne-grid";
  root.append(bar, grid);
  el.appendChild(root);

  function setPage(p) {
    const n = model.get("n_pages");
    const page = Math.max(0, Math.min(n - 1, p));
    if (page !== model.get("page")) {
      model.set("page", page);
      model.save_changes();
    }
  }

  function setMode(mode) {
    if (mode !== model.get("mode")) {
      model.set("mode", mode);
      model.save_changes();
    }
  }

  function draw() {
    const items = model.get("items") || [];
    const size = model.get("thumbnail_size");
    const nSel = model.get("n_selected");
    const page = model.get("page");
    const nPages = model.get("n_pages");
    const mode = model.get("mode");
    const focused = model.get("focused");
    root.dataset.nSelected = String(nSel);
    root.dataset.nItems = String(items.length);
    root.dataset.page = String(page);
    root.dataset.mode = mode;
    root.style.maxHeight = `${model.get("height")}px`;
    grid.style.gridTemplateColumns = `repeat(auto-fill, minmax(${size + 8}px, 1fr))`;
    const msg = model.get("message");
    if (nSel === 0) {
      status.textContent = msg || model.get("hint") || "No selection.";
    } else if (mode === "sample") {
      status.textContent = `${nSel} selected \u00b7 random sample of ${items.length}`;
    } else {
      status.textContent = `${nSel} selected \u00b7 page ${page + 1}/${nPages}`;
    }
    prev.disabled = mode !== "page" || page <= 0;
    next.disabled = mode !== "page" || page >= nPages - 1;
    resample.disabled = mode !== "sample";
    pageField.disabled = mode !== "page" || nPages <= 1;
    pageField.max = String(Math.max(1, nPages));
    if (document.activeElement !== pageField) pageField.value = String(page + 1);
    order.value = model.get("order");
    if (document.activeElement !== sizeInput) sizeInput.value = String(size);
    root.dataset.order = model.get("order");
    root.dataset.thumbnailSize = String(size);
    pageMode.setAttribute("aria-pressed", String(mode === "page"));
    sampleMode.setAttribute("aria-pressed", String(mode === "sample"));

    const frag = document.createDocumentFragment();
    for (const item of items) {
      const fig = document.createElement("figure");
      fig.className = "tsimcne-thumb";
      fig.style.margin = "0";
      fig.dataset.index = String(item.index);
      if (item.index === focused) fig.classList.add("tsimcne-focused");
      fig.title = `#${item.index} ${item.label}${item.tags ? " [" + item.tags + "]" : ""}`;
      const img = document.createElement("img");
      img.src = item.src;
      img.width = size;
      img.height = size;
      img.alt = `${item.label} #${item.index}`;
      const cap = document.createElement("figcaption");
      cap.className = "tsimcne-caption";
      cap.textContent = item.label;
      cap.style.width = `${size}px`;
      fig.append(img, cap);
      fig.addEventListener("click", () => {
        model.send({ type: "click", index: item.index });
      });
      frag.appendChild(fig);
    }
    grid.replaceChildren(frag);
    if (items.length === 0 && nSel > 0) {
      const empty = document.createElement("div");
      empty.className = "tsimcne-empty";
      empty.textContent = "loading\u2026";
      grid.appendChild(empty);
    }
  }

  const names = ["items", "n_selected", "page", "n_pages", "mode", "focused", "message",
    "thumbnail_size", "height", "hint", "order"];
  for (const name of names) model.on(`change:${name}`, draw);
  draw();
  return () => {
    for (const name of names) model.off(`change:${name}`, draw);
  };
}

export default { render };
