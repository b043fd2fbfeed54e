"use strict";
// Interactive behaviour of snag's flame graph: zoom, search, hover details.
// URL parameters make a view linkable: ?z=<frame id> zooms, ?s=<regex> searches.
// The same engine drives a flame graph embedded in snag's HTML report: there
// the page calls snagFlameGraph(svg, root, ask) with the SVG in a shadow root.
(function () {
  // flameGraph wires up one flame graph. root is where its ids live (the
  // document, or a shadow root); ask is called when the Search button wants
  // a term. It returns the controls a host page needs.
  function flameGraph(svg, root, ask) {
    var total = Number(svg.getAttribute("data-total")) || 0;
    var unit = svg.getAttribute("data-unit");
    var x0 = Number(svg.getAttribute("data-x0"));
    var width = Number(svg.getAttribute("data-w"));
    var frames = Array.prototype.slice.call(svg.querySelectorAll("g.f"));
    var detail = root.getElementById("detail");
    var matched = root.getElementById("matched");
    var resetBtn = root.getElementById("reset");
    var searchBtn = root.getElementById("search");
    var zoomed = null;
    var searchTerm = "";

    frames.forEach(function (g) {
      g._s = Number(g.getAttribute("data-s"));
      g._v = Number(g.getAttribute("data-v"));
      g._d = Number(g.getAttribute("data-d"));
      g._rect = g.querySelector("rect");
      g._text = g.querySelector("text");
      var title = g.querySelector("title").textContent;
      var nl = title.indexOf("\n");
      g._name = nl < 0 ? title : title.slice(0, nl);
      g._info = nl < 0 ? "" : title.slice(nl + 1);
    });

    function fmtWeight(v) {
      if (unit === "calls") {
        return v + (v === 1 ? " call" : " calls");
      }
      var units = [[60e9, "min"], [1e9, "s"], [1e6, "ms"], [1e3, "\u00b5s"]];
      for (var i = 0; i < units.length; i++) {
        if (v >= units[i][0]) {
          var x = v / units[i][0];
          return (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) + " " + units[i][1];
        }
      }
      return v + " ns";
    }

    // fit truncates a label to its frame with "..", measuring the real font.
    function fit(g, w) {
      var t = g._text;
      var room = w - 6;
      if (room < 12) {
        t.textContent = "";
        return;
      }
      t.textContent = g._name;
      var len = t.getComputedTextLength();
      if (len <= room) {
        return;
      }
      // At least three characters before the "..", or nothing.
      var n = Math.floor((g._name.length * room) / len) - 2;
      while (n >= 3) {
        t.textContent = g._name.slice(0, n) + "..";
        if (t.getComputedTextLength() <= room) {
          return;
        }
        n--;
      }
      t.textContent = "";
    }

    function place(g, x, w) {
      g.classList.toggle("thin", w < 3);
      g._rect.setAttribute("x", x.toFixed(2));
      g._rect.setAttribute("width", w.toFixed(2));
      g._text.setAttribute("x", (x + 3).toFixed(2));
      fit(g, w);
    }

    // layout shows the subtree of the frame covering [s, s+v) at depth d
    // across the full width, its ancestors as full-width dimmed bars, and
    // hides everything else.
    function layout(s, v, d) {
      frames.forEach(function (g) {
        var inside = g._d >= d && g._s >= s && g._s + g._v <= s + v;
        var above = g._d < d && g._s <= s && g._s + g._v >= s + v;
        g.classList.toggle("hide", !inside && !above);
        g.classList.toggle("parent", above);
        if (inside) {
          place(g, x0 + ((g._s - s) / v) * width, (g._v / v) * width);
        } else if (above) {
          place(g, x0, width);
        }
      });
    }

    function zoom(g) {
      if (!g || g._d === 0) {
        reset();
        return;
      }
      zoomed = g;
      layout(g._s, g._v, g._d);
      resetBtn.classList.remove("hidden");
    }

    function reset() {
      zoomed = null;
      layout(0, total, 0);
      resetBtn.classList.add("hidden");
    }

    function toRegExp(term) {
      try {
        return new RegExp(term);
      } catch (e) {
        return new RegExp(term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      }
    }

    // search highlights matching frames and reports their share of the total,
    // counting time under nested matches once.
    function search(term) {
      searchTerm = term || "";
      var spans = [];
      var re = searchTerm ? toRegExp(searchTerm) : null;
      frames.forEach(function (g) {
        var hit = !!re && re.test(g._name);
        g.classList.toggle("match", hit);
        if (hit) {
          spans.push([g._s, g._s + g._v]);
        }
      });
      if (!re) {
        matched.textContent = " ";
        searchBtn.classList.remove("active");
        searchBtn.querySelector("text").textContent = "Search";
        return;
      }
      spans.sort(function (a, b) { return a[0] - b[0]; });
      var sum = 0, end = -1;
      spans.forEach(function (sp) {
        if (sp[0] >= end) {
          sum += sp[1] - sp[0];
          end = sp[1];
        } else if (sp[1] > end) {
          sum += sp[1] - end;
          end = sp[1];
        }
      });
      var pct = total > 0 ? ((100 * sum) / total).toFixed(1) : "0.0";
      matched.textContent = "Matched \u201c" + searchTerm + "\u201d: " + pct + "% (" + fmtWeight(sum) + ")";
      searchBtn.classList.add("active");
      searchBtn.querySelector("text").textContent = "Clear search";
    }

    function askSearch() {
      ask(searchTerm, search);
    }

    svg.addEventListener("click", function (e) {
      var g = e.target.closest ? e.target.closest("g.f") : null;
      if (g) {
        zoom(g);
      }
    });
    svg.addEventListener("dblclick", function (e) {
      if (!e.target.closest("g.f")) {
        reset();
      }
    });
    svg.addEventListener("mouseover", function (e) {
      var g = e.target.closest ? e.target.closest("g.f") : null;
      if (g) {
        detail.textContent = g._name + "  \u2014  " + g._info;
      }
    });
    svg.addEventListener("mouseout", function (e) {
      if (e.target.closest && e.target.closest("g.f")) {
        detail.textContent = " ";
      }
    });
    resetBtn.addEventListener("click", function (e) {
      e.stopPropagation();
      reset();
    });
    searchBtn.addEventListener("click", function (e) {
      e.stopPropagation();
      if (searchTerm) {
        search("");
      } else {
        askSearch();
      }
    });
    // Space the legend by the rendered width of its labels.
    var lx = 0;
    Array.prototype.forEach.call(svg.querySelectorAll(".legend .item"), function (item) {
      item.setAttribute("transform", "translate(" + lx + ",0)");
      lx += item.getBBox().width + 20;
    });
    reset();
    svg.setAttribute("data-ready", "1");

    return {
      search: search,
      askSearch: askSearch,
      reset: function () {
        reset();
        search("");
      },
      zoom: function (id) {
        var g = root.getElementById(id);
        if (g) {
          zoom(g);
        }
      },
      matched: function () {
        return matched.textContent;
      },
    };
  }

  var doc = document.documentElement;
  if (doc.namespaceURI !== "http://www.w3.org/2000/svg") {
    window.snagFlameGraph = flameGraph;
    return;
  }
  // A standalone SVG: the whole window is the flame graph.
  var fg = flameGraph(doc, document, function (term, search) {
    var t = window.prompt("Highlight frames matching (regular expression):", term);
    if (t !== null) {
      search(t);
    }
  });
  window.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "f") {
      e.preventDefault();
      fg.askSearch();
    } else if (e.key === "Escape") {
      fg.reset();
    }
  });
  var params = new URLSearchParams(window.location.search);
  if (params.get("z")) {
    fg.zoom(params.get("z"));
  }
  if (params.get("s")) {
    fg.search(params.get("s"));
  }
})();
