/* evalindex history page.
 *
 * Everything shown comes from the JSON block #evalindex-history. Model names, labels and
 * index names are untrusted, so text reaches the page only through textContent and
 * attribute setters: no markup is ever built from data. Links come from the data only when
 * they are relative paths (no scheme), so a link can never run script.
 */
(function () {
  "use strict";

  const PALETTE = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
  ];
  const CHART = { width: 760, height: 300, left: 56, right: 16, top: 16, bottom: 40 };
  const VERDICTS = {
    best: "best",
    below: "significantly below the best",
    "not below": "not significantly below the best",
    "no pairs": "no shared scored samples with the best",
  };

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
    if (children) {
      for (const child of children) {
        if (child === null || child === undefined || child === false) continue;
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const key of Object.keys(attrs || {})) node.setAttribute(key, String(attrs[key]));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const isNum = (v) => typeof v === "number" && isFinite(v);
  const fmt = (v) => (isNum(v) ? v.toFixed(4) : "-");
  const fmtCI = (ci) =>
    Array.isArray(ci) && ci.length === 2 && isNum(ci[0]) && isNum(ci[1])
      ? "[" + ci[0].toFixed(4) + ", " + ci[1].toFixed(4) + "]"
      : "-";
  const fmtDelta = (v) => (isNum(v) ? (v > 0 ? "+" : "") + v.toFixed(4) : "-");
  const fmtP = (p) => (!isNum(p) ? "-" : p < 0.001 ? "<0.001" : p.toFixed(3));
  const fmtCost = (v) => (isNum(v) ? "$" + v.toFixed(4) : "-");
  const str = (v) => (v === null || v === undefined || v === "" ? "-" : String(v));

  function fmtTime(value) {
    if (typeof value !== "string" || value === "") return "-";
    return value.length >= 16 && value[10] === "T"
      ? value.slice(0, 10) + " " + value.slice(11, 16)
      : value;
  }

  function fmtCommit(run) {
    if (typeof run.commit !== "string" || run.commit === "") return "-";
    return run.commit.slice(0, 10) + (run.dirty ? "-dirty" : "");
  }

  // a link target from the data: only a relative path, never a scheme such as javascript:
  function safeHref(href) {
    if (typeof href !== "string" || href === "") return null;
    if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith("//")) return null;
    return href;
  }

  const runAnchor = (key) => "run-" + key.replace(/[^A-Za-z0-9_-]/g, "-");

  function anchorLink(key, text) {
    return el("a", { href: "#" + runAnchor(key), class: "run-link", text: text });
  }

  function table(id, headers, rows) {
    const head = el("tr", null, headers.map((h) => el("th", { scope: "col", text: h })));
    return el("table", { id: id, class: "data" }, [
      el("thead", null, [head]),
      el("tbody", null, rows),
    ]);
  }

  function td(text, cls) {
    return el("td", { class: cls || null, text: text });
  }

  // ------------------------------------------------------------------ the data

  const payload = JSON.parse(document.getElementById("evalindex-history").textContent);
  const indexes = Array.isArray(payload.indexes) ? payload.indexes : [];
  const alpha = isNum(payload.alpha) ? payload.alpha : 0.05;
  const app = document.getElementById("app");
  document.title = String(payload.title || "evalindex history");

  app.appendChild(el("h1", { id: "page-title", text: document.title }));
  app.appendChild(
    el("p", {
      class: "lead",
      text:
        "Saved runs (--index-save), the index over time per model, and a leaderboard of " +
        "each model's latest run. 'Significantly below the best' is a paired comparison " +
        "with the best model's latest run on the samples both scored (p < " + alpha + ").",
    })
  );

  // one colour per model across the whole page, in order of first appearance
  const colours = new Map();
  function colourOf(model) {
    const name = str(model);
    if (!colours.has(name)) colours.set(name, PALETTE[colours.size % PALETTE.length]);
    return colours.get(name);
  }

  // ------------------------------------------------------------------ the chart

  function drawChart(position, runs) {
    const figure = el("figure", { class: "chart" });
    const width = CHART.width, height = CHART.height;
    const root = svg("svg", {
      id: "chart-" + position,
      class: "history-chart",
      viewBox: "0 0 " + width + " " + height,
      role: "img",
      "aria-label": "index score over time per model",
    });
    const plotted = runs.filter((r) => isNum(r.score));
    // the x axis is the order the runs were saved in (runs arrive newest first), evenly
    // spaced: runs saved minutes apart and months apart stay equally readable
    const xs = plotted.map((r, k) => plotted.length - 1 - k);
    const lows = plotted.map((r) => (Array.isArray(r.ci95) && isNum(r.ci95[0]) ? r.ci95[0] : r.score));
    const highs = plotted.map((r) => (Array.isArray(r.ci95) && isNum(r.ci95[1]) ? r.ci95[1] : r.score));
    if (plotted.length === 0) {
      figure.appendChild(el("p", { class: "empty", text: "No run of this index has a score." }));
      return figure;
    }
    let yMin = Math.min.apply(null, lows), yMax = Math.max.apply(null, highs);
    const pad = Math.max((yMax - yMin) * 0.1, 0.02);
    yMin = Math.max(0, yMin - pad);
    yMax = Math.min(1, yMax + pad);
    if (yMax <= yMin) { yMin = 0; yMax = 1; }
    let xMin = Math.min.apply(null, xs), xMax = Math.max.apply(null, xs);
    if (!(xMax > xMin)) { xMin -= 1; xMax += 1; }
    const plotW = width - CHART.left - CHART.right, plotH = height - CHART.top - CHART.bottom;
    const x = (v) => CHART.left + ((v - xMin) / (xMax - xMin)) * plotW;
    const y = (v) => CHART.top + (1 - (v - yMin) / (yMax - yMin)) * plotH;

    const grid = svg("g", { class: "grid" });
    for (let k = 0; k <= 4; k++) {
      const value = yMin + ((yMax - yMin) * k) / 4;
      grid.appendChild(svg("line", { x1: CHART.left, x2: width - CHART.right, y1: y(value), y2: y(value) }));
      grid.appendChild(svg("text", { x: CHART.left - 6, y: y(value) + 4, "text-anchor": "end" }, value.toFixed(3)));
    }
    root.appendChild(grid);
    const axis = svg("g", { class: "axis" });
    axis.appendChild(svg("line", { x1: CHART.left, x2: width - CHART.right, y1: CHART.top + plotH, y2: CHART.top + plotH }));
    const first = plotted[xs.indexOf(Math.min.apply(null, xs))];
    const last = plotted[xs.indexOf(Math.max.apply(null, xs))];
    axis.appendChild(svg("text", { x: CHART.left, y: height - 12, "text-anchor": "start" }, fmtTime(first.saved_at)));
    axis.appendChild(svg("text", { x: width - CHART.right, y: height - 12, "text-anchor": "end" }, fmtTime(last.saved_at)));
    axis.appendChild(svg("text", { x: CHART.left + plotW / 2, y: height - 12, "text-anchor": "middle" }, "runs in the order saved"));
    root.appendChild(axis);

    // one line per model through its runs in time order, a point and whisker per run
    const models = new Map();
    plotted.forEach((r, k) => {
      const name = str(r.model);
      if (!models.has(name)) models.set(name, []);
      models.get(name).push({ run: r, x: xs[k] });
    });
    for (const [name, points] of models) {
      points.sort((a, b) => a.x - b.x || a.run.number - b.run.number);
      const colour = colourOf(name);
      const series = svg("g", { class: "series", "data-model": name });
      series.appendChild(
        svg("polyline", {
          class: "line",
          fill: "none",
          stroke: colour,
          points: points.map((p) => x(p.x).toFixed(1) + "," + y(p.run.score).toFixed(1)).join(" "),
        })
      );
      for (const p of points) {
        const r = p.run;
        const link = svg("a", { href: "#" + runAnchor(r.key), class: "point-link" });
        if (Array.isArray(r.ci95) && isNum(r.ci95[0]) && isNum(r.ci95[1])) {
          link.appendChild(
            svg("line", { class: "whisker", stroke: colour, x1: x(p.x), x2: x(p.x), y1: y(r.ci95[0]), y2: y(r.ci95[1]) })
          );
        }
        const point = svg("circle", {
          class: "point", cx: x(p.x).toFixed(1), cy: y(r.score).toFixed(1), r: 4.5, fill: colour,
          "data-key": r.key, "data-model": name, "data-score": r.score,
        });
        point.appendChild(svg("title", {}, name + " · " + r.key + "_" + r.label + " · " + fmt(r.score) + " " + fmtCI(r.ci95)));
        link.appendChild(point);
        series.appendChild(link);
      }
      root.appendChild(series);
    }
    figure.appendChild(root);
    const legend = el("ul", { class: "legend" });
    for (const name of models.keys()) {
      legend.appendChild(
        el("li", { "data-model": name }, [
          el("span", { class: "swatch" }),
          el("span", { class: "legend-model", text: name }),
        ])
      );
      // the colour is set as a property, not as markup
      legend.lastChild.firstChild.style.backgroundColor = colourOf(name);
    }
    figure.appendChild(legend);
    return figure;
  }

  // ------------------------------------------------------------------ the tables

  function drawLeaderboard(position, standings) {
    const rows = standings.map((s) =>
      el("tr", { "data-key": s.key, "data-verdict": s.verdict, class: "verdict-" + s.verdict.replace(" ", "-") }, [
        td(String(s.rank), "num"),
        el("td", { class: "model", text: str(s.model) }),
        el("td", null, [anchorLink(s.key, s.key)]),
        td(fmtTime(s.saved_at), "nowrap"),
        td(fmt(s.score), "num score"),
        td(fmtCI(s.ci95), "num"),
        td(fmtDelta(s.delta), "num delta"),
        td(fmtCI(s.delta_ci95), "num"),
        td(fmtP(s.p_value), "num"),
        td(isNum(s.paired_count) ? String(s.paired_count) : "-", "num"),
        el("td", { class: "verdict", text: VERDICTS[s.verdict] || str(s.verdict), title: s.note || null }),
      ])
    );
    return table("leaderboard-" + position, [
      "#", "model", "latest run", "saved (UTC)", "index", "95% CI", "Δ vs best", "95% CI of Δ",
      "p", "paired", "",
    ], rows);
  }

  function drawRuns(position, runs) {
    const taskTypes = [];
    for (const r of runs) {
      for (const pair of r.task_types || []) if (!taskTypes.includes(pair[0])) taskTypes.push(pair[0]);
    }
    // the run before each one that ran the same test set: the natural one to compare with
    const previous = new Map();
    const ordered = runs.slice().reverse(); // oldest first
    const lastOfSet = new Map();
    for (const r of ordered) {
      if (r.testset_sha256 && lastOfSet.has(r.testset_sha256)) previous.set(r.key, lastOfSet.get(r.testset_sha256));
      if (r.testset_sha256) lastOfSet.set(r.testset_sha256, r);
    }
    const rows = runs.map((r) => {
      const values = new Map(r.task_types || []);
      const files = el("td", { class: "files" });
      const jsonHref = safeHref(r.json_href);
      if (jsonHref) files.appendChild(el("a", { href: jsonHref, class: "json-link", text: "JSON" }));
      const htmlHref = safeHref(r.html_href);
      if (htmlHref) {
        files.appendChild(document.createTextNode(" "));
        files.appendChild(el("a", { href: htmlHref, class: "html-link", text: "report" }));
      }
      const before = previous.get(r.key);
      const compareCell = el("td", { class: "previous" });
      if (before) {
        compareCell.appendChild(anchorLink(before.key, before.key));
        compareCell.title = "evalindex compare " + before.file + " " + r.file;
      } else {
        compareCell.textContent = "-";
      }
      return el("tr", { id: runAnchor(r.key), "data-key": r.key, class: "run-row" }, [
        td(r.key + "_" + r.label, "run-name nowrap"),
        td(fmtTime(r.saved_at), "nowrap"),
        el("td", { class: "model", text: str(r.model) }),
        td(fmtCommit(r), "mono"),
        td(r.testset_sha256 ? r.testset_sha256.slice(0, 12) : "-", "mono"),
        td(str(r.comparable), "cmp"),
        td(fmt(r.score), "num score"),
        td(fmtCI(r.ci95), "num"),
        ...taskTypes.map((name) => td(fmt(values.get(name)), "num task-type")),
        td(fmtCost(r.cost), "num cost"),
        compareCell,
        files,
      ]);
    });
    return table("runs-" + position, [
      "run", "saved (UTC)", "model", "commit", "test set", "cmp", "index", "95% CI",
      ...taskTypes, "cost", "previous of the same test set", "files",
    ], rows);
  }

  // ------------------------------------------------------------------ the page

  indexes.forEach((index, position) => {
    const runs = Array.isArray(index.runs) ? index.runs : [];
    const section = el("section", { class: "index", id: "index-" + position, "data-index": str(index.name) });
    section.appendChild(el("h2", { class: "index-name", text: str(index.name) }));
    section.appendChild(el("h3", { text: "Index over time" }));
    section.appendChild(drawChart(position, runs));
    section.appendChild(el("h3", { text: "Leaderboard: the latest run of each model" }));
    section.appendChild(drawLeaderboard(position, Array.isArray(index.leaderboard) ? index.leaderboard : []));
    section.appendChild(el("h3", { text: "Runs, newest first" }));
    section.appendChild(drawRuns(position, runs));
    section.appendChild(
      el("p", {
        class: "note",
        text: "cmp: runs with the same letter ran the same test set and compare sample by " +
          "sample. Hover a previous run for the evalindex compare command.",
      })
    );
    app.appendChild(section);
  });
  if (indexes.length === 0) app.appendChild(el("p", { id: "no-runs", text: "No saved runs." }));
  document.documentElement.dataset.ready = "true";
})();
