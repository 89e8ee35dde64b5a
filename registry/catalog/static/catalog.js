// Lab Registry catalog: the home page's search and filters over the prebuilt index
// (search-index.js), and the copy buttons. It follows registry/catalog/search.py's `matches`:
// every word of the text appears in an entry's text; each chosen facet is equal to (or held by)
// the entry's. No request leaves the page.
"use strict";

function catalogMatches(entry, words, facets) {
  for (const word of words) {
    if (!entry.text.includes(word)) return false;
  }
  for (const [field, wanted] of Object.entries(facets)) {
    if (!wanted) continue;
    const have = Array.isArray(entry[field]) ? entry[field] : [entry[field]];
    if (!have.some((v) => v !== null && String(v).toLowerCase() === wanted.toLowerCase())) {
      return false;
    }
  }
  return true;
}

function setUpSearch() {
  const list = document.getElementById("artifacts");
  const box = document.getElementById("q");
  if (!list || !box || !window.CATALOG_INDEX) return;
  const entries = window.CATALOG_INDEX.entries;
  const items = Array.from(list.querySelectorAll("li[data-entry]"));
  const selects = Array.from(document.querySelectorAll("select[data-facet]"));
  const shown = document.getElementById("shown");
  function update() {
    const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    const facets = {};
    for (const select of selects) facets[select.dataset.facet] = select.value;
    let count = 0;
    for (const item of items) {
      const ok = catalogMatches(entries[Number(item.dataset.entry)], words, facets);
      item.hidden = !ok;
      if (ok) count += 1;
    }
    if (shown) shown.textContent = `${count} of ${items.length} shown`;
  }
  box.addEventListener("input", update);
  for (const select of selects) select.addEventListener("change", update);
  update();
}

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => {
      const code = button.parentElement.querySelector("code");
      const text = code ? code.textContent : "";
      const done = () => { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, () => selectText(code));
      } else {
        selectText(code);
      }
    });
  }
}

function selectText(node) {
  if (!node) return;
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpSearch();
  setUpCopyButtons();
});
