/* evalindex case-analysis report.
 *
 * Everything shown comes from the JSON block #evalindex-data. Model output is untrusted, so
 * text reaches the page only through textContent, createTextNode and attribute setters: no
 * markup is ever built from data. The sample table draws one page at a time and searches
 * lowercase copies of each sample's text that are built on the first text search.
 */
(function () {
  "use strict";

  const PAGE_SIZES = [50, 100, 200, 500];
  const DEFAULT_PAGE_SIZE = 100;
  const FLIPS_PER_PAGE = 10;
  const SEARCH_DEBOUNCE_MS = 150;
  const HISTOGRAM_BINS = 10;
  const PREVIEW_CHARS = 240;
  const OUTCOME_RANK = { passed: 0, missed: 1, error: 2 };
  const KNOWN_SAMPLE_KEYS = new Set([
    "id", "dataset", "subset", "task_type", "tags", "categories", "weight", "outcome", "score",
    "response", "reasoning", "target", "explanation", "usage", "latency_s", "input", "metrics",
    "prompt",
  ]);
  // timings (ms since navigation start) and hooks for benchmarks and tests
  const api = { scriptStartMs: performance.now(), filterRuns: 0, lastFilterMs: null };
  window.__evalindex = api;

  // ------------------------------------------------------------------ small helpers

  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const key of Object.keys(props)) {
        const value = props[key];
        if (value === undefined || value === null || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = String(value);
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    if (children) for (const child of children) add(node, child);
    return node;
  }

  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (typeof child === "string" || typeof child === "number") {
      node.appendChild(document.createTextNode(String(child)));
    } else {
      node.appendChild(child);
    }
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const key of Object.keys(attrs || {})) node.setAttribute(key, String(attrs[key]));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const isNum = (v) => typeof v === "number" && isFinite(v);
  const fmt = (v) => (isNum(v) ? v.toFixed(4) : "–");
  const fmtCI = (ci) =>
    Array.isArray(ci) && ci.length === 2 && isNum(ci[0]) && isNum(ci[1])
      ? "[" + ci[0].toFixed(4) + ", " + ci[1].toFixed(4) + "]"
      : "–";
  const fmtDelta = (v) => (isNum(v) ? (v > 0 ? "+" : "") + v.toFixed(4) : "–");
  const fmtP = (p) => (!isNum(p) ? "–" : p < 0.001 ? "<0.001" : p.toFixed(3));
  const fmtInt = (v) => (isNum(v) ? String(Math.round(v)) : "–");
  const fmtSeconds = (v) => (isNum(v) ? v.toFixed(2) + " s" : "–");
  const str = (v) => (v === null || v === undefined ? "" : String(v));

  function asText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    try {
      return JSON.stringify(value, null, 2);
    } catch (err) {
      return String(value);
    }
  }

  function textBlock(value, emptyText) {
    const text = asText(value);
    if (text === "") return el("div", { class: "empty", text: emptyText || "(empty)" });
    return el("pre", { class: "text", text: text });
  }

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function section(id, title) {
    const node = el("section", { id: id }, [el("h2", { text: title })]);
    document.getElementById("app").appendChild(node);
    return node;
  }

  // ------------------------------------------------------------------ the data

  const payload = JSON.parse(document.getElementById("evalindex-data").textContent);
  api.dataParsedMs = performance.now();
  const results = payload.results || {};
  const comparison = payload.comparison || null;
  const base = payload.base || null;
  const index = results.index || {};
  const tables = results.tables || {};
  const samples = Array.isArray(results.samples) ? results.samples : [];
  const total = samples.length;
  // prompt texts several samples share are stored once: put them back
  const sharedTexts = Array.isArray(payload.shared_texts) ? payload.shared_texts : [];
  if (sharedTexts.length > 0) {
    for (const s of samples) {
      if (!Array.isArray(s.input)) continue;
      for (const m of s.input) {
        const ref = m && m.content;
        if (ref && typeof ref === "object" && typeof ref.$shared === "number") {
          m.content = sharedTexts[ref.$shared];
        }
      }
    }
  }

  // normalised the way the aggregation names rows
  const datasetOf = samples.map((s) => str(s.dataset));
  const taskTypeOf = samples.map((s) => str(s.task_type) || "default");
  const tagsOf = samples.map((s) => (Array.isArray(s.tags) ? s.tags.map(str) : []));
  const outcomeOf = samples.map((s) => str(s.outcome));
  const scoreOf = samples.map((s) => (isNum(s.score) && s.outcome !== "error" ? s.score : null));

  const newById = new Map();
  samples.forEach((s, i) => {
    if (!newById.has(str(s.id))) newById.set(str(s.id), i);
  });
  const baseById = new Map();
  if (base && Array.isArray(base.samples)) {
    for (const s of base.samples) if (!baseById.has(str(s.id))) baseById.set(str(s.id), s);
  }

  // per-sample change against the base run, from the comparison's id lists
  const CHANGE_LABEL = {
    regressed: "passed → missed",
    fixed: "missed → passed",
    new_only: "only in new",
    same: "unchanged",
  };
  const changeOf = new Array(total).fill("");
  if (comparison) {
    const flips = comparison.flips || {};
    const mark = (ids, label) => {
      for (const id of ids || []) {
        const i = newById.get(str(id));
        if (i !== undefined) changeOf[i] = label;
      }
    };
    samples.forEach((s, i) => {
      if (baseById.has(str(s.id))) changeOf[i] = "same";
    });
    mark(comparison.only_in_new, "new_only");
    mark(flips.passed_to_missed, "regressed");
    mark(flips.missed_to_passed, "fixed");
  }

  const comparisonRows = new Map();
  if (comparison && Array.isArray(comparison.rows)) {
    for (const row of comparison.rows) {
      comparisonRows.set(str(row.table) + "\u0000" + str(row.name), row);
    }
  }
  const alpha = comparison && isNum(comparison.alpha) ? comparison.alpha : 0.05;

  function deltaClass(row) {
    if (!row || !isNum(row.delta) || row.delta === 0) return "num";
    let cls = "num " + (row.delta > 0 ? "better" : "worse");
    if (isNum(row.p_value) && row.p_value < alpha) cls += " significant";
    return cls;
  }

  // ------------------------------------------------------------------ header and summary

  function renderHeader() {
    const run = results.run || {};
    const app = document.getElementById("app");
    const title = payload.title || str(index.name) || "evalindex report";
    app.appendChild(el("h1", { id: "report-title", text: title }));
    const facts = [];
    if (run.model) facts.push("model " + str(run.model));
    if (run.seed !== undefined && run.seed !== null) facts.push("seed " + str(run.seed));
    if (run.started_at) facts.push("started " + str(run.started_at));
    if (isNum(run.duration_s)) facts.push("took " + fmtSeconds(run.duration_s));
    if (run.spec_sha256) facts.push("spec " + str(run.spec_sha256).slice(0, 12));
    if (run.testset_sha256) facts.push("test set " + str(run.testset_sha256).slice(0, 12));
    facts.push(total + " samples");
    app.appendChild(el("p", { class: "run-info" }, facts.map((f) => el("span", { text: f }))));
    // a run of part of the test set (-k, --lf, a shard, an interruption, ...): say so first
    const partial = run.partial;
    if (partial && typeof partial === "object") {
      app.appendChild(el("p", {
        class: "partial-banner", id: "partial-banner", role: "note",
        text: "Partial run: " + fmtInt(partial.ran) + " of " + fmtInt(partial.of) + " records (" +
          str(partial.why) + "). The index covers only these records; gates and baselines need " +
          "the whole index.",
      }));
    }

    const outcomes = { passed: 0, missed: 0, error: 0 };
    for (const o of outcomeOf) if (o in outcomes) outcomes[o] += 1;
    const cards = el("div", { class: "cards", id: "summary" });
    cards.appendChild(
      el("div", { class: "card", id: "index-card" }, [
        el("div", { class: "label", text: "index " + str(index.name) }),
        el("div", { class: "value", id: "index-score", text: fmt(index.score) }),
        el("div", { class: "sub" }, ["95% CI ", el("span", { id: "index-ci", text: fmtCI(index.ci95) })]),
      ])
    );
    cards.appendChild(
      el("div", { class: "card" }, [
        el("div", { class: "label", text: "scored samples" }),
        el("div", { class: "value", id: "index-count", text: fmtInt(index.count) }),
        el("div", { class: "sub" }, ["errors ", el("span", { id: "index-errors", text: fmtInt(index.errors) })]),
      ])
    );
    cards.appendChild(
      el("div", { class: "card", id: "outcome-card" }, [
        el("div", { class: "label", text: "outcomes" }),
        el("div", { class: "sub" }, [
          el("span", { class: "outcome outcome-passed", text: "passed " + outcomes.passed }),
        ]),
        el("div", { class: "sub" }, [
          el("span", { class: "outcome outcome-missed", text: "missed " + outcomes.missed }),
        ]),
        el("div", { class: "sub" }, [
          el("span", { class: "outcome outcome-error", text: "error " + outcomes.error }),
        ]),
      ])
    );
    if (comparison) {
      const row = comparisonRows.get("index\u0000" + str(index.name)) ||
        (comparison.rows || []).find((r) => r.table === "index") || {};
      const baseLabel = str((comparison.base || {}).label) || "base";
      const newLabel = str((comparison.new || {}).label) || "new";
      const flips = comparison.flips || {};
      cards.appendChild(
        el("div", { class: "card", id: "comparison-card" }, [
          el("div", { class: "label", text: "vs " + baseLabel + " (" + fmt(row.base) + ")" }),
          el("div", {
            class: "value " + deltaClass(row).replace("num", ""), id: "index-delta", text: fmtDelta(row.delta),
          }),
          el("div", { class: "sub" }, [
            "95% CI ", el("span", { id: "index-delta-ci", text: fmtCI(row.ci95) }),
            " · p ", el("span", { id: "index-delta-p", text: fmtP(row.p_value) }),
          ]),
          el("div", { class: "sub muted", text: newLabel + " · " + fmtInt(comparison.paired_count) + " paired" }),
        ])
      );
      cards.appendChild(
        el("div", { class: "card" }, [
          el("div", { class: "label", text: "flipped samples" }),
          el("div", { class: "sub worse", id: "flips-regressed-count",
            text: "passed → missed " + (flips.passed_to_missed || []).length }),
          el("div", { class: "sub better", id: "flips-fixed-count",
            text: "missed → passed " + (flips.missed_to_passed || []).length }),
          el("div", { class: "sub muted",
            text: "only in base " + (comparison.only_in_base || []).length +
              " · only in new " + (comparison.only_in_new || []).length }),
        ])
      );
    }
    app.appendChild(cards);
    if (comparison && Array.isArray(comparison.notes) && comparison.notes.length > 0) {
      app.appendChild(el("ul", { class: "notes", id: "comparison-notes" },
        comparison.notes.map((note) => el("li", { text: str(note) }))));
    }
  }

  // ------------------------------------------------------------------ bars and tables

  function scoreBar(row) {
    const bar = el("div", { class: "bar" });
    const score = isNum(row.weighted) ? row.weighted : null;
    const fill = el("div", { class: "fill" });
    fill.style.width = (score === null ? 0 : Math.max(0, Math.min(1, score)) * 100) + "%";
    bar.appendChild(fill);
    const ci = row.ci95;
    if (Array.isArray(ci) && isNum(ci[0]) && isNum(ci[1])) {
      const lo = Math.max(0, Math.min(1, ci[0]));
      const hi = Math.max(lo, Math.min(1, ci[1]));
      const whisker = el("div", { class: "ci" });
      whisker.style.left = lo * 100 + "%";
      whisker.style.width = (hi - lo) * 100 + "%";
      bar.appendChild(whisker);
    }
    bar.setAttribute("title", fmt(score) + " " + fmtCI(ci));
    return bar;
  }

  function comparisonCells(table, name) {
    if (!comparison) return [];
    const row = comparisonRows.get(table + "\u0000" + name);
    if (!row) return [el("td", { class: "num", text: "–" }), el("td"), el("td"), el("td")];
    return [
      el("td", { class: "num", text: fmt(row.base) }),
      el("td", { class: deltaClass(row) + " delta", text: fmtDelta(row.delta) }),
      el("td", { class: "num", text: fmtCI(row.ci95) }),
      el("td", { class: "num", text: fmtP(row.p_value) }),
    ];
  }

  function comparisonHeads() {
    if (!comparison) return [];
    return ["base", "Δ", "Δ 95% CI", "p"].map((h) => el("th", { class: "num", text: h }));
  }

  function renderTree() {
    const categoryRows = Array.isArray(tables.category) ? tables.category : [];
    const datasetRows = Array.isArray(tables.dataset) ? tables.dataset : [];
    const node = section("categories", "Categories and datasets");
    const byPath = new Map(categoryRows.map((r) => [str(r.name), r]));
    const childCategories = new Map();
    const roots = [];
    for (const row of categoryRows) {
      const path = str(row.name);
      const cut = path.lastIndexOf("/");
      const parent = cut > 0 ? path.slice(0, cut) : null;
      if (parent !== null && byPath.has(parent)) {
        if (!childCategories.has(parent)) childCategories.set(parent, []);
        childCategories.get(parent).push(row);
      } else {
        roots.push(row);
      }
    }
    // a dataset hangs under the deepest category its samples name
    const weightOf = new Map();
    const leafOf = new Map();
    samples.forEach((s, i) => {
      const name = datasetOf[i];
      if (!leafOf.has(name)) {
        const cats = Array.isArray(s.categories) ? s.categories.map(str) : [];
        leafOf.set(name, cats.join("/"));
        weightOf.set(name, s.weight);
      }
    });
    const datasetsUnder = new Map();
    const looseDatasets = [];
    for (const row of datasetRows) {
      const leaf = leafOf.get(str(row.name));
      if (leaf !== undefined && byPath.has(leaf)) {
        if (!datasetsUnder.has(leaf)) datasetsUnder.set(leaf, []);
        datasetsUnder.get(leaf).push(row);
      } else {
        looseDatasets.push(row);
      }
    }

    const head = el("tr", null, [
      el("th", { text: "name" }),
      el("th", { text: "weighted score and 95% CI" }),
      el("th", { class: "num", text: "weighted" }),
      el("th", { class: "num", text: "95% CI" }),
      el("th", { class: "num", text: "weight" }),
      el("th", { class: "num", text: "count" }),
      el("th", { class: "num", text: "errors" }),
    ].concat(comparisonHeads()));
    const body = el("tbody");
    const line = (row, depth, kind, table) => {
      const name = str(row.name);
      const shown = kind === "category" ? name.slice(name.lastIndexOf("/") + 1) : name;
      const nameCell = el("td", { class: "node-name", title: name }, [
        shown, el("span", { class: "kind", text: kind }),
      ]);
      nameCell.style.paddingLeft = 0.5 + depth * 1.3 + "rem";
      const weight = kind === "dataset" ? weightOf.get(name) : undefined;
      body.appendChild(
        el("tr", { class: kind + "-node", "data-name": name }, [
          nameCell,
          el("td", null, [scoreBar(row)]),
          el("td", { class: "num", text: fmt(row.weighted) }),
          el("td", { class: "num", text: fmtCI(row.ci95) }),
          el("td", { class: "num", text: isNum(weight) ? weight.toFixed(4) : "" }),
          el("td", { class: "num", text: fmtInt(row.count) }),
          el("td", { class: "num", text: fmtInt(row.errors) }),
        ].concat(comparisonCells(table, name)))
      );
    };
    const walk = (row, depth) => {
      const path = str(row.name);
      line(row, depth, "category", "category");
      for (const child of childCategories.get(path) || []) walk(child, depth + 1);
      for (const ds of datasetsUnder.get(path) || []) line(ds, depth + 1, "dataset", "dataset");
    };
    for (const root of roots) walk(root, 0);
    for (const ds of looseDatasets) line(ds, 0, "dataset", "dataset");
    if (!body.firstChild) {
      node.appendChild(el("p", { class: "empty", text: "No categories or datasets." }));
      return;
    }
    node.appendChild(
      el("div", { class: "table-wrap" }, [
        el("table", { class: "grid tree", id: "category-tree" }, [el("thead", null, [head]), body]),
      ])
    );
  }

  const TABLE_TITLES = [
    ["task_type", "By task type", true],
    ["tag", "By tag", true],
    ["dataset", "By dataset", false],
    ["subset", "By subset", false],
    ["category", "By category", false],
  ];

  function renderTables() {
    const node = section("tables", "Tables");
    for (const [table, title, open] of TABLE_TITLES) {
      const rows = Array.isArray(tables[table]) ? tables[table] : [];
      if (rows.length === 0) continue;
      const head = el("tr", null, [
        el("th", { text: table }),
        el("th", { class: "num", text: "micro" }),
        el("th", { class: "num", text: "macro" }),
        el("th", { class: "num", text: "weighted" }),
        el("th", { class: "num", text: "95% CI" }),
        el("th", { class: "num", text: "count" }),
        el("th", { class: "num", text: "errors" }),
      ].concat(comparisonHeads()));
      const body = el("tbody", null, rows.map((row) =>
        el("tr", { "data-name": str(row.name) }, [
          el("td", { text: str(row.name) }),
          el("td", { class: "num", text: fmt(row.micro) }),
          el("td", { class: "num", text: fmt(row.macro) }),
          el("td", { class: "num", text: fmt(row.weighted) }),
          el("td", { class: "num", text: fmtCI(row.ci95) }),
          el("td", { class: "num", text: fmtInt(row.count) }),
          el("td", { class: "num", text: fmtInt(row.errors) }),
        ].concat(comparisonCells(table, str(row.name))))
      ));
      node.appendChild(
        el("details", { open: open }, [
          el("summary", { text: title + " (" + rows.length + ")" }),
          el("div", { class: "table-wrap" }, [
            el("table", { class: "grid", id: "table-" + table }, [el("thead", null, [head]), body]),
          ]),
        ])
      );
    }
  }

  function renderUsage() {
    const usage = results.usage;
    if (!usage || typeof usage !== "object") return;
    const rows = [].concat(usage.total ? [usage.total] : [], Array.isArray(usage.dataset) ? usage.dataset : []);
    if (rows.length === 0) return;
    const node = section("usage", "Tokens and latency");
    const columns = [
      ["samples", fmtInt], ["requests", fmtInt], ["cached", fmtInt], ["prompt_tokens", fmtInt],
      ["completion_tokens", fmtInt], ["latency_p50_s", fmtSeconds], ["latency_p95_s", fmtSeconds],
    ];
    const head = el("tr", null, [el("th", { text: "name" })].concat(columns.map(([key]) =>
      el("th", { class: "num", text: key.replace(/_s$/, "").replace(/_/g, " ") }))));
    const body = el("tbody", null, rows.map((row) => el("tr", null, [
      el("td", { text: str(row.name) }),
    ].concat(columns.map(([key, format]) => el("td", { class: "num", text: format(row[key]) }))))));
    node.appendChild(el("div", { class: "table-wrap" }, [
      el("table", { class: "grid", id: "table-usage" }, [el("thead", null, [head]), body]),
    ]));
  }

  function fmtUsd(value) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(6) : "-";
  }

  function renderCost() {
    // usage.cost is there only when the run had prices
    const cost = results.usage && typeof results.usage === "object" ? results.usage.cost : null;
    if (!cost || typeof cost !== "object") return;
    const rows = (Array.isArray(cost.dataset) ? cost.dataset : []).concat([
      { name: "total", model: cost.model, judge: cost.judge, total: cost.total, cached: cost.cached },
    ]);
    const node = section("cost", "Cost (USD)");
    const columns = [["model", "model"], ["judge", "judge"], ["total", "total"],
      ["cached", "cached (first asked)"]];
    const head = el("tr", null, [el("th", { text: "name" })].concat(columns.map(([, title]) =>
      el("th", { class: "num", text: title }))));
    const body = el("tbody", null, rows.filter((row) => row && typeof row === "object").map((row) =>
      el("tr", null, [el("td", { text: str(row.name) })].concat(columns.map(([key]) =>
        el("td", { class: "num", text: fmtUsd(row[key]) }))))));
    node.appendChild(el("div", { class: "table-wrap" }, [
      el("table", { class: "grid", id: "table-cost" }, [el("thead", null, [head]), body]),
    ]));
    const notes = [];
    if (typeof cost.cached === "number" && cost.cached > 0) {
      notes.push("cached answers cost nothing this run; they cost $" + fmtUsd(cost.cached) +
        " when first asked");
    }
    if (typeof cost.budget === "number") {
      notes.push("budget: $" + fmtUsd(cost.total) + " spent of --index-budget $" + cost.budget);
      if (typeof cost.budget_reached === "number" && cost.budget_reached > 0) {
        notes.push("budget reached: " + cost.budget_reached + " records not asked (errors); " +
          "raise --index-budget and rerun, the answers already paid for come from the cache");
      }
    }
    for (const note of notes) node.appendChild(el("p", { class: "cost-note", text: note }));
  }

  function renderMetrics() {
    // secondary metrics per dataset, then over the whole index (dataset null)
    const rows = Array.isArray(results.metrics) ? results.metrics : [];
    if (rows.length === 0) return;
    const node = section("metrics", "Secondary metrics");
    const head = el("tr", null, [
      el("th", { text: "dataset" }),
      el("th", { text: "metric" }),
      el("th", { class: "num", text: "mean" }),
      el("th", { class: "num", text: "count" }),
    ]);
    const body = el("tbody", null, rows.map((row) => {
      const dataset = row.dataset === null || row.dataset === undefined ? "(all)" : str(row.dataset);
      return el("tr", { "data-dataset": dataset, "data-metric": str(row.metric) }, [
        el("td", { text: dataset }),
        el("td", { text: str(row.metric) }),
        el("td", { class: "num", text: fmt(row.mean) }),
        el("td", { class: "num", text: fmtInt(row.count) }),
      ]);
    }));
    node.appendChild(el("div", { class: "table-wrap" }, [
      el("table", { class: "grid", id: "table-metrics" }, [el("thead", null, [head]), body]),
    ]));
  }

  // ------------------------------------------------------------------ score histogram

  function renderHistogram() {
    const node = section("distribution", "Score distribution");
    const bins = new Array(HISTOGRAM_BINS).fill(0);
    let scored = 0;
    for (const score of scoreOf) {
      if (score === null) continue;
      const clamped = Math.max(0, Math.min(1, score));
      bins[Math.min(HISTOGRAM_BINS - 1, Math.floor(clamped * HISTOGRAM_BINS))] += 1;
      scored += 1;
    }
    const width = 560, height = 200, left = 40, bottom = 28, top = 16;
    const plotW = width - left - 10, plotH = height - bottom - top;
    const most = Math.max(1, ...bins);
    const chart = svg("svg", {
      class: "histogram", id: "histogram", viewBox: "0 0 " + width + " " + height,
      width: width, height: height, role: "img",
    });
    chart.appendChild(svg("title", {}, "Histogram of " + scored + " sample scores"));
    const slot = plotW / HISTOGRAM_BINS;
    bins.forEach((count, b) => {
      const h = (count / most) * plotH;
      const x = left + b * slot;
      const lo = b / HISTOGRAM_BINS, hi = (b + 1) / HISTOGRAM_BINS;
      const rect = svg("rect", {
        class: "bin", x: x + 2, y: top + plotH - h, width: slot - 4, height: h,
        "data-count": count,
      });
      const range = "[" + lo.toFixed(1) + ", " + hi.toFixed(1) + (b === HISTOGRAM_BINS - 1 ? "]" : ")");
      rect.appendChild(svg("title", {}, range + ": " + count));
      chart.appendChild(rect);
      chart.appendChild(svg("text", {
        x: x + slot / 2, y: top + plotH - h - 3, "text-anchor": "middle",
      }, count));
    });
    for (let t = 0; t <= HISTOGRAM_BINS; t += 2) {
      chart.appendChild(svg("text", {
        x: left + t * slot, y: height - 8, "text-anchor": "middle",
      }, (t / HISTOGRAM_BINS).toFixed(1)));
    }
    chart.appendChild(svg("line", {
      class: "axis", x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH,
    }));
    node.appendChild(chart);
    node.appendChild(el("p", { class: "muted", text:
      scored + " scored samples; " + (total - scored) + " without a score (errors) not shown." }));
  }

  // ------------------------------------------------------------------ one sample in full

  function messagesOf(sample) {
    const input = sample.input !== undefined ? sample.input : sample.prompt;
    if (input === undefined || input === null) return [];
    if (!Array.isArray(input)) return [{ role: "prompt", content: asText(input) }];
    return input.map((message) => {
      if (message === null || typeof message !== "object") {
        return { role: "message", content: asText(message) };
      }
      let content = message.content;
      if (Array.isArray(content)) {
        content = content
          .map((part) => (part && part.type === "text" ? str(part.text) : asText(part)))
          .join("\n");
      }
      return { role: str(message.role) || "message", content: asText(content) };
    });
  }

  function keyValues(pairs, id) {
    const rows = pairs.map(([k, v]) =>
      el("tr", null, [el("td", { text: k }), el("td", { text: typeof v === "string" ? v : asText(v) })])
    );
    return el("table", { class: "kv", id: id }, [el("tbody", null, rows)]);
  }

  function answerBlock(sample, cls) {
    const parts = [];
    parts.push(el("h4", null, [
      "Outcome: ",
      el("span", { class: "outcome outcome-" + str(sample.outcome), text: str(sample.outcome) || "–" }),
      " · score " + fmt(sample.score),
    ]));
    if (sample.reasoning !== undefined && sample.reasoning !== null && sample.reasoning !== "") {
      parts.push(el("div", { class: "reasoning " + cls + "-reasoning" }, [
        el("h4", { text: "Reasoning" }), textBlock(sample.reasoning),
      ]));
    }
    parts.push(el("h4", { text: "Response" }));
    parts.push(el("div", { class: cls + "-response" }, [textBlock(sample.response, "(no response)")]));
    parts.push(el("h4", { text: "Scorer explanation" }));
    parts.push(el("div", { class: cls + "-explanation" }, [textBlock(sample.explanation)]));
    return parts;
  }

  function sampleDetail(i) {
    const s = samples[i];
    const detail = el("div", { class: "detail" });
    const usage = s.usage && typeof s.usage === "object" ? s.usage : {};
    const facts = [
      ["id", str(s.id)],
      ["dataset / subset", datasetOf[i] + " / " + (str(s.subset) || "default")],
      ["task type", taskTypeOf[i]],
      ["tags", tagsOf[i].join(", ")],
      ["categories", Array.isArray(s.categories) ? s.categories.map(str).join(" / ") : ""],
      ["weight", isNum(s.weight) ? String(s.weight) : ""],
      ["prompt tokens", fmtInt(usage.prompt_tokens)],
      ["completion tokens", fmtInt(usage.completion_tokens)],
      ["latency", fmtSeconds(s.latency_s)],
    ];
    for (const key of Object.keys(usage)) {
      if (key !== "prompt_tokens" && key !== "completion_tokens") facts.push(["usage." + key, usage[key]]);
    }
    if (changeOf[i]) facts.push(["change vs base", CHANGE_LABEL[changeOf[i]]]);
    detail.appendChild(keyValues(facts, null));

    detail.appendChild(el("h4", { text: "Prompt" }));
    const messages = messagesOf(s);
    const prompt = el("div", { class: "detail-prompt" });
    if (messages.length === 0) prompt.appendChild(el("div", { class: "empty", text: "(prompt not recorded)" }));
    for (const m of messages) {
      prompt.appendChild(el("div", { class: "message" }, [
        el("div", { class: "role", text: m.role }), textBlock(m.content),
      ]));
    }
    detail.appendChild(prompt);

    const baseSample = baseById.get(str(s.id));
    if (baseSample) {
      const baseLabel = str(base.label) || "base";
      const newLabel = (comparison && str((comparison.new || {}).label)) || "new";
      detail.appendChild(el("div", { class: "side-by-side" }, [
        el("div", { class: "base-side" }, [el("h3", { text: "Base: " + baseLabel })]
          .concat(answerBlock(baseSample, "base"))),
        el("div", { class: "new-side" }, [el("h3", { text: "New: " + newLabel })]
          .concat(answerBlock(s, "detail"))),
      ]));
    } else {
      for (const part of answerBlock(s, "detail")) detail.appendChild(part);
    }

    detail.appendChild(el("h4", { text: "Target" }));
    detail.appendChild(el("div", { class: "detail-target" }, [textBlock(s.target, "(no target)")]));

    if (s.metrics && typeof s.metrics === "object" && Object.keys(s.metrics).length > 0) {
      detail.appendChild(el("h4", { text: "Metrics" }));
      detail.appendChild(keyValues(Object.keys(s.metrics).map((k) => [k, s.metrics[k]]), null));
      detail.lastChild.classList.add("detail-metrics");
    }
    const extra = Object.keys(s).filter((k) => !KNOWN_SAMPLE_KEYS.has(k));
    if (extra.length > 0) {
      detail.appendChild(el("h4", { text: "Other fields" }));
      detail.appendChild(keyValues(extra.map((k) => [k, s[k]]), null));
      detail.lastChild.classList.add("detail-other");
    }
    return detail;
  }

  // ------------------------------------------------------------------ the sample table

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const state = {
    filters: { dataset: "", task_type: "", tag: "", outcome: "", change: "", text: "" },
    sortKey: null,
    sortDir: 1,
    order: samples.map((_, i) => i),
    visible: null,
    page: 0,
    pageSize: DEFAULT_PAGE_SIZE,
    expanded: new Set(),
  };
  state.visible = state.order.slice();
  let haystacks = null;
  const controls = {};

  function searchText(i) {
    const s = samples[i];
    const parts = [str(s.id), asText(s.response), asText(s.reasoning), asText(s.target),
      asText(s.explanation)];
    for (const m of messagesOf(s)) parts.push(m.content);
    return parts.join("\n").toLowerCase();
  }

  function tokensOf(i) {
    const u = samples[i].usage;
    if (!u || typeof u !== "object") return null;
    const p = isNum(u.prompt_tokens) ? u.prompt_tokens : 0;
    const c = isNum(u.completion_tokens) ? u.completion_tokens : 0;
    return isNum(u.prompt_tokens) || isNum(u.completion_tokens) ? p + c : null;
  }

  const CHANGE_RANK = { regressed: 0, fixed: 1, new_only: 2, same: 3, "": 4 };
  const SORT_VALUE = {
    id: (i) => str(samples[i].id),
    dataset: (i) => datasetOf[i],
    task_type: (i) => taskTypeOf[i],
    outcome: (i) => (outcomeOf[i] in OUTCOME_RANK ? OUTCOME_RANK[outcomeOf[i]] : 3),
    score: (i) => scoreOf[i],
    base_score: (i) => {
      const b = baseById.get(str(samples[i].id));
      return b && isNum(b.score) ? b.score : null;
    },
    change: (i) => CHANGE_RANK[changeOf[i]],
    tokens: tokensOf,
    latency: (i) => (isNum(samples[i].latency_s) ? samples[i].latency_s : null),
  };

  function sortBy(key) {
    if (state.sortKey === key) state.sortDir = -state.sortDir;
    else {
      state.sortKey = key;
      state.sortDir = 1;
    }
    const dir = state.sortDir;
    const values = samples.map((_, i) => SORT_VALUE[key](i));
    const order = samples.map((_, i) => i);
    order.sort((a, b) => {
      const va = values[a], vb = values[b];
      // missing values last in either direction
      if (va === null || va === undefined) return vb === null || vb === undefined ? a - b : 1;
      if (vb === null || vb === undefined) return -1;
      const c = typeof va === "string" ? collator.compare(va, vb) : va - vb;
      return c !== 0 ? c * dir : a - b;
    });
    state.order = order;
    for (const th of document.querySelectorAll("#samples-table th[data-key]")) {
      th.setAttribute("aria-sort", th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    applyFilters();
  }

  function applyFilters() {
    const t0 = performance.now();
    const f = state.filters;
    const needle = f.text.trim().toLowerCase();
    if (needle !== "" && haystacks === null) haystacks = samples.map((_, i) => searchText(i));
    const visible = [];
    for (const i of state.order) {
      if (f.dataset && datasetOf[i] !== f.dataset) continue;
      if (f.task_type && taskTypeOf[i] !== f.task_type) continue;
      if (f.outcome && outcomeOf[i] !== f.outcome) continue;
      if (f.tag && tagsOf[i].indexOf(f.tag) === -1) continue;
      if (f.change) {
        const c = changeOf[i];
        if (f.change === "flipped" ? c !== "regressed" && c !== "fixed" : c !== f.change) continue;
      }
      if (needle !== "" && haystacks[i].indexOf(needle) === -1) continue;
      visible.push(i);
    }
    state.visible = visible;
    state.page = 0;
    renderPage();
    api.lastFilterMs = performance.now() - t0;
    api.filterRuns += 1;
    return api.lastFilterMs;
  }

  function filterSelect(id, label, key, values) {
    const select = el("select", { id: id, "data-filter": key }, [el("option", { value: "", text: "all" })]);
    for (const [value, count] of values) {
      const option = el("option", { text: value + " (" + count + ")" });
      option.value = value;
      select.appendChild(option);
    }
    select.addEventListener("change", () => {
      state.filters[key] = select.value;
      applyFilters();
    });
    controls[key] = select;
    return el("label", null, [label, select]);
  }

  function counted(lists) {
    const counts = new Map();
    for (const names of lists) for (const name of names) counts.set(name, (counts.get(name) || 0) + 1);
    return Array.from(counts.entries()).sort((a, b) => collator.compare(a[0], b[0]));
  }

  function renderRow(i) {
    const s = samples[i];
    const response = asText(s.response);
    const preview = response.length > PREVIEW_CHARS ? response.slice(0, PREVIEW_CHARS) + "…" : response;
    const cells = [
      el("td", { class: "id-cell", text: str(s.id) }),
      el("td", { text: datasetOf[i] }),
      el("td", { text: taskTypeOf[i] }),
      el("td", { text: tagsOf[i].join(", ") }),
      el("td", null, [el("span", { class: "outcome outcome-" + outcomeOf[i], text: outcomeOf[i] })]),
      el("td", { class: "num score-cell", text: fmt(scoreOf[i]) }),
    ];
    if (comparison) {
      const b = baseById.get(str(s.id));
      cells.push(el("td", { class: "num", text: b ? fmt(b.score) : "–" }));
      const change = changeOf[i];
      const cls = change === "regressed" ? "worse" : change === "fixed" ? "better" : "muted";
      cells.push(el("td", { class: "change-cell " + cls, text: change && change !== "same" ? CHANGE_LABEL[change] : "" }));
    }
    cells.push(el("td", { class: "num", text: fmtInt(tokensOf(i)) }));
    cells.push(el("td", { class: "num", text: fmtSeconds(s.latency_s) }));
    cells.push(el("td", { class: "preview", text: preview.replace(/\s+/g, " ") }));
    return el("tr", {
      class: "sample-row", tabindex: 0, "data-index": i, "data-id": str(s.id),
      "aria-expanded": state.expanded.has(i) ? "true" : "false",
    }, cells);
  }

  function detailRow(i) {
    const width = document.querySelectorAll("#samples-table thead th").length;
    return el("tr", { class: "sample-detail", "data-index": i }, [
      el("td", { colspan: width }, [sampleDetail(i)]),
    ]);
  }

  function renderPage() {
    const tbody = document.querySelector("#samples-table tbody");
    const count = state.visible.length;
    const pages = Math.max(1, Math.ceil(count / state.pageSize));
    state.page = Math.min(state.page, pages - 1);
    const start = state.page * state.pageSize;
    const fragment = document.createDocumentFragment();
    for (const i of state.visible.slice(start, start + state.pageSize)) {
      fragment.appendChild(renderRow(i));
      if (state.expanded.has(i)) fragment.appendChild(detailRow(i));
    }
    if (count === 0) {
      const width = document.querySelectorAll("#samples-table thead th").length;
      fragment.appendChild(el("tr", { class: "no-rows" }, [
        el("td", { colspan: width, class: "empty", text: "No sample matches these filters." }),
      ]));
    }
    tbody.textContent = "";
    tbody.appendChild(fragment);
    const counter = document.getElementById("sample-count");
    counter.textContent = count + " of " + total + " samples";
    counter.dataset.shown = String(count);
    document.getElementById("page-info").textContent = "page " + (state.page + 1) + " of " + pages;
    document.getElementById("pager-prev").disabled = state.page === 0;
    document.getElementById("pager-next").disabled = state.page >= pages - 1;
  }

  function toggleRow(row) {
    const i = Number(row.dataset.index);
    const next = row.nextElementSibling;
    if (state.expanded.has(i)) {
      state.expanded.delete(i);
      row.setAttribute("aria-expanded", "false");
      if (next && next.classList.contains("sample-detail")) next.remove();
    } else {
      state.expanded.add(i);
      row.setAttribute("aria-expanded", "true");
      row.after(detailRow(i));
    }
  }

  function renderSamples() {
    const node = section("samples", "Samples");
    const filters = el("div", { class: "filters", id: "filters" });
    filters.appendChild(filterSelect("filter-dataset", "dataset", "dataset", counted(datasetOf.map((d) => [d]))));
    filters.appendChild(filterSelect("filter-task-type", "task type", "task_type", counted(taskTypeOf.map((t) => [t]))));
    filters.appendChild(filterSelect("filter-tag", "tag", "tag", counted(tagsOf)));
    filters.appendChild(filterSelect("filter-outcome", "outcome", "outcome", counted(outcomeOf.map((o) => [o]))));
    if (comparison) {
      const changes = counted(changeOf.filter((c) => c).map((c) => [c]));
      const changeLabel = filterSelect("filter-change", "change vs base", "change", changes);
      const select = changeLabel.querySelector("select");
      for (const option of select.querySelectorAll("option")) {
        if (option.value in CHANGE_LABEL) {
          option.textContent = CHANGE_LABEL[option.value] + option.textContent.slice(option.value.length);
        }
      }
      const flipped = changeOf.filter((c) => c === "regressed" || c === "fixed").length;
      const any = el("option", { text: "any flip (" + flipped + ")" });
      any.value = "flipped";
      select.insertBefore(any, select.options[1] || null);
      filters.appendChild(changeLabel);
    }
    const search = el("input", {
      type: "search", id: "filter-text", placeholder: "id, prompt, response, target, explanation",
      autocomplete: "off",
    });
    const runSearch = debounce(() => {
      state.filters.text = search.value;
      applyFilters();
    }, SEARCH_DEBOUNCE_MS);
    search.addEventListener("input", runSearch);
    controls.text = search;
    filters.appendChild(el("label", null, ["search", search]));
    const clear = el("button", { type: "button", id: "filter-clear", text: "clear filters" });
    clear.addEventListener("click", () => setFilters({ dataset: "", task_type: "", tag: "", outcome: "", change: "", text: "" }));
    filters.appendChild(clear);
    node.appendChild(filters);

    const pager = el("div", { class: "pager" });
    const prev = el("button", { type: "button", id: "pager-prev", text: "‹ previous" });
    const next = el("button", { type: "button", id: "pager-next", text: "next ›" });
    const size = el("select", { id: "page-size" });
    for (const n of PAGE_SIZES) {
      const option = el("option", { text: n + " per page" });
      option.value = String(n);
      option.selected = n === DEFAULT_PAGE_SIZE;
      size.appendChild(option);
    }
    prev.addEventListener("click", () => {
      state.page = Math.max(0, state.page - 1);
      renderPage();
    });
    next.addEventListener("click", () => {
      state.page += 1;
      renderPage();
    });
    size.addEventListener("change", () => {
      state.pageSize = Number(size.value);
      state.page = 0;
      renderPage();
    });
    pager.appendChild(el("strong", { id: "sample-count" }));
    pager.appendChild(prev);
    pager.appendChild(el("span", { id: "page-info" }));
    pager.appendChild(next);
    pager.appendChild(size);
    node.appendChild(pager);

    const heads = [
      ["id", "id"], ["dataset", "dataset"], ["task_type", "task type"], [null, "tags"],
      ["outcome", "outcome"], ["score", "score"],
    ];
    if (comparison) heads.push(["base_score", "base score"], ["change", "change"]);
    heads.push(["tokens", "tokens"], ["latency", "latency"], [null, "response"]);
    const headRow = el("tr", null, heads.map(([key, label]) =>
      el("th", {
        "data-key": key, "aria-sort": key ? "none" : null, text: label,
        class: ["score", "base_score", "tokens", "latency"].indexOf(key) >= 0 ? "num" : null,
      })
    ));
    headRow.addEventListener("click", (event) => {
      const th = event.target.closest("th[data-key]");
      if (th) sortBy(th.dataset.key);
    });
    const tbody = el("tbody");
    tbody.addEventListener("click", (event) => {
      if (event.target.closest("tr.sample-detail")) return;
      const row = event.target.closest("tr.sample-row");
      if (row) toggleRow(row);
    });
    tbody.addEventListener("keydown", (event) => {
      const row = event.target.closest ? event.target.closest("tr.sample-row") : null;
      if (row && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        toggleRow(row);
      }
    });
    node.appendChild(el("div", { class: "table-wrap" }, [
      el("table", { class: "grid", id: "samples-table" }, [el("thead", null, [headRow]), tbody]),
    ]));
    applyFilters();
  }

  function setFilters(changes) {
    for (const key of Object.keys(changes)) {
      if (!(key in state.filters)) throw new Error("unknown filter " + key);
      state.filters[key] = str(changes[key]);
      if (controls[key]) controls[key].value = state.filters[key];
    }
    return applyFilters();
  }

  // ------------------------------------------------------------------ flipped samples

  function flipCard(id) {
    const i = newById.get(str(id));
    const newSample = i === undefined ? null : samples[i];
    const baseSample = baseById.get(str(id)) || null;
    const side = (label, sample, cls) => el("div", { class: cls }, [
      el("h4", { text: label }),
    ].concat(sample
      ? [el("div", null, [
        el("span", { class: "outcome outcome-" + str(sample.outcome), text: str(sample.outcome) }),
        " · score " + fmt(sample.score),
      ]), textBlock(sample.response, "(no response)")]
      : [el("div", { class: "empty", text: "response not available (pass the base results)" })]));
    return el("div", { class: "flip", "data-id": str(id) }, [
      el("div", { class: "flip-head", text: str(id) + (newSample ? " · " + str(newSample.dataset) : "") }),
      el("div", { class: "side-by-side" }, [
        side("base: " + (str(base && base.label) || str((comparison.base || {}).label) || "base"),
          baseSample, "flip-base"),
        side("new: " + (str((comparison.new || {}).label) || "new"), newSample, "flip-new"),
      ]),
      newSample ? el("div", null, [el("h4", { text: "Target" }), textBlock(newSample.target, "(no target)")]) : null,
    ]);
  }

  function flipList(id, title, ids) {
    const box = el("div", { id: id }, [el("h3", { text: title + " (" + ids.length + ")" })]);
    if (ids.length === 0) {
      box.appendChild(el("p", { class: "empty", text: "none" }));
      return box;
    }
    const list = el("div", { class: "flip-list" });
    const info = el("span");
    const prev = el("button", { type: "button", text: "‹" });
    const next = el("button", { type: "button", text: "›" });
    const pages = Math.ceil(ids.length / FLIPS_PER_PAGE);
    let page = 0;
    const draw = () => {
      list.textContent = "";
      for (const flipId of ids.slice(page * FLIPS_PER_PAGE, (page + 1) * FLIPS_PER_PAGE)) {
        list.appendChild(flipCard(flipId));
      }
      info.textContent = "page " + (page + 1) + " of " + pages;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    };
    prev.addEventListener("click", () => { page = Math.max(0, page - 1); draw(); });
    next.addEventListener("click", () => { page = Math.min(pages - 1, page + 1); draw(); });
    if (pages > 1) box.appendChild(el("div", { class: "pager" }, [prev, info, next]));
    box.appendChild(list);
    draw();
    return box;
  }

  function renderFlips() {
    if (!comparison) return;
    const flips = comparison.flips || {};
    const node = section("flips", "Flipped samples");
    node.appendChild(flipList("flips-regressed", "passed → missed",
      Array.isArray(flips.passed_to_missed) ? flips.passed_to_missed : []));
    node.appendChild(flipList("flips-fixed", "missed → passed",
      Array.isArray(flips.missed_to_passed) ? flips.missed_to_passed : []));
  }

  // ------------------------------------------------------------------ start

  function renderNavigation() {
    const nav = el("nav", { class: "sections", id: "sections" });
    for (const node of document.querySelectorAll("#app > section")) {
      const button = el("button", { type: "button", text: node.querySelector("h2").textContent });
      button.addEventListener("click", () => node.scrollIntoView());
      nav.appendChild(button);
    }
    document.getElementById("summary").after(nav);
  }

  function main() {
    api.steps = {};
    const steps = [renderHeader, renderTree, renderTables, renderMetrics, renderHistogram, renderUsage,
      renderCost, renderFlips, renderSamples, renderNavigation];
    for (const step of steps) {
      const t0 = performance.now();
      step();
      api.steps[step.name] = performance.now() - t0;
    }
    api.setFilters = setFilters;
    api.sortBy = sortBy;
    api.visibleCount = () => state.visible.length;
    api.firstRenderMs = performance.now();
    // navigation start to the table being drawn
    window.__evalindexReady = api.firstRenderMs;
    document.documentElement.dataset.ready = "true";
  }

  try {
    main();
  } catch (err) {
    const app = document.getElementById("app");
    app.appendChild(el("p", { class: "worse", id: "render-error", text: "The report could not be drawn: " + err }));
    throw err;
  }
})();
