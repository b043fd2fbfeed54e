"use strict";
// snag's HTML report: the timeline (drawn from the embedded JSON, with zoom,
// pan and hover details) and the flame graph's search box. Every string from
// the trace goes into the page as text (textContent), never as markup.
// ?s=<regex> searches the flame graph when the page opens, ?t=<from>,<to>
// (seconds) zooms the timeline.
(function () {
  var SVGNS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVGNS, name);
    for (var k in attrs) {
      e.setAttribute(k, attrs[k]);
    }
    if (parent) {
      parent.appendChild(e);
    }
    return e;
  }

  function text(parent, attrs, s) {
    var t = el("text", attrs, parent);
    t.textContent = s;
    return t;
  }

  function clip(s, n) {
    return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
  }

  // fmtTime renders a time since the start of the trace with as many
  // decimals as step (the axis's tick spacing, or a precision) needs.
  function fmtTime(us, step) {
    function dec(unit) {
      return Math.min(Math.max(Math.ceil(-Math.log10(step / unit) - 1e-9), 0), 6);
    }
    if (us >= 1e6 || step >= 1e6) {
      return (us / 1e6).toFixed(dec(1e6)) + " s";
    }
    if (us >= 1e3 || step >= 1e3) {
      return (us / 1e3).toFixed(dec(1e3)) + " ms";
    }
    return us.toFixed(dec(1)) + " \u00b5s";
  }

  function niceStep(span, ticks) {
    var raw = span / Math.max(ticks, 1);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  function timeline() {
    var box = document.getElementById("tl");
    var src = document.getElementById("snag-timeline");
    if (!box || !src) {
      return;
    }
    var data = JSON.parse(src.textContent);
    var S = data.strs, C = data.cats, SL = data.sl, N = 10;
    var lanes = data.lanes;
    var total = Math.max(data.dur, 1);
    for (var i = 0; i < SL.length; i += N) {
      total = Math.max(total, SL[i + 1] + SL[i + 2]);
    }
    // Each lane's slices are contiguous and sorted by start.
    var from = [], to = [];
    for (var l = 0; l < lanes.length; l++) {
      from.push(-1);
      to.push(-1);
    }
    for (var j = 0; j < SL.length; j += N) {
      var ln = SL[j];
      if (from[ln] < 0) {
        from[ln] = j;
      }
      to[ln] = j + N;
    }

    // The axis, then a strip for the findings' flags, then the lanes.
    var LABEL = 230, PAD = 14, TICKS = 20, AXIS = 40, LANE = 22, PROC = 22;
    var v0 = 0, v1 = total;
    var svg = el("svg", { class: "tl-svg" });
    box.appendChild(svg);
    var tip = document.getElementById("tl-tip");
    var win = document.getElementById("tl-window");
    var plotW = 800;

    // Rows: a header per process, a lane per thread.
    var rows = [], y = AXIS;
    lanes.forEach(function (lane, li) {
      if (lane.proc) {
        rows.push({ proc: lane.proc, y: y });
        y += PROC;
      }
      rows.push({ lane: li, y: y });
      lane.y = y;
      y += LANE;
    });
    var height = y + 6;

    function render() {
      var W = Math.max(box.clientWidth || 1100, 600);
      plotW = W - LABEL - PAD;
      var k = plotW / (v1 - v0);
      while (svg.firstChild) {
        svg.removeChild(svg.firstChild);
      }
      svg.setAttribute("width", W);
      svg.setAttribute("height", height);
      svg.setAttribute("viewBox", "0 0 " + W + " " + height);

      var defs = el("defs", {}, svg);
      var pat = el("pattern", { id: "tl-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
      el("rect", { width: 2.5, height: 6, fill: "rgba(255,255,255,0.75)" }, pat);
      var cp = el("clipPath", { id: "tl-plot" }, defs);
      el("rect", { x: LABEL, y: 0, width: plotW, height: height }, cp);

      var bg = el("g", {}, svg);
      rows.forEach(function (r, n) {
        if (r.proc !== undefined) {
          el("rect", { class: "proc-row", x: 0, y: r.y, width: W, height: PROC }, bg);
          text(bg, { class: "proc-label", x: 8, y: r.y + 15 }, clip(r.proc, 90));
          return;
        }
        var lane = lanes[r.lane];
        el("rect", { class: "lane-bg" + (n % 2 ? " odd" : ""), x: 0, y: r.y, width: W, height: LANE }, bg);
        var a = el("a", { href: "#" + lane.id }, bg);
        text(a, { class: "lane-label", x: 8, y: r.y + 15 }, clip(lane.label, 24));
        if (lane.role) {
          text(bg, { class: "lane-role", x: LABEL - 8, y: r.y + 15, "text-anchor": "end" }, lane.role);
        }
      });

      // Axis and grid.
      el("rect", { class: "marks-bg", x: LABEL, y: TICKS, width: plotW, height: AXIS - TICKS }, bg);
      text(bg, { class: "lane-role", x: LABEL - 8, y: TICKS + 14, "text-anchor": "end" }, data.marks.length ? "findings" : "");
      var axis = el("g", { class: "axis" }, svg);
      var step = niceStep(v1 - v0, plotW / 110);
      for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
        var x = LABEL + (t - v0) * k;
        el("line", { x1: x, x2: x, y1: 4, y2: height }, axis);
        if (x < W - 40) {
          text(axis, { x: x + 3, y: 14 }, fmtTime(t, step));
        }
      }

      // Slices; a call narrower than a pixel merges into the one before it
      // when they touch, so a million calls never make a million rects.
      var plot = el("g", { "clip-path": "url(#tl-plot)" }, svg);
      var drawn = 0;
      lanes.forEach(function (lane, li) {
        if (from[li] < 0) {
          return;
        }
        var prev = null, prevEnd = -1, prevCat = -1;
        for (var j = from[li]; j < to[li]; j += N) {
          var s = SL[j + 1], d = SL[j + 2];
          if (s + d < v0) {
            continue;
          }
          if (s > v1) {
            break;
          }
          var x = LABEL + (s - v0) * k;
          var w = Math.max(d * k, 1.5);
          var cat = SL[j + 7];
          if (prev && d * k < 1 && x <= prevEnd + 0.5 && cat === prevCat) {
            prevEnd = Math.max(prevEnd, x + w);
            prev.setAttribute("width", (prevEnd - Number(prev.getAttribute("x"))).toFixed(2));
            prev.setAttribute("data-n", Number(prev.getAttribute("data-n")) + 1);
            continue;
          }
          var cls = "sl";
          if (SL[j + 9]) {
            cls += " finding";
          }
          if (SL[j + 8] & 1) {
            cls += " partial";
          }
          prev = el("rect", {
            class: cls, x: x.toFixed(2), y: lane.y + 3, width: w.toFixed(2), height: LANE - 6, rx: 1.5,
            fill: C[cat].color, "data-i": j / N, "data-n": 1,
          }, plot);
          if (SL[j + 8] & 1) {
            el("rect", { class: "edge", x: x.toFixed(2), y: lane.y + 3, width: w.toFixed(2), height: LANE - 6, "pointer-events": "none" }, plot);
          }
          prevEnd = x + w;
          prevCat = cat;
          drawn++;
        }
      });

      // Findings: a numbered flag where each was first seen.
      data.marks.forEach(function (m) {
        var lane = lanes[m.lane];
        if (!lane || m.at < v0 || m.at > v1) {
          return;
        }
        var x = LABEL + (m.at - v0) * k;
        var g = el("g", { class: "mark sev-" + m.sev, "data-n": m.n }, plot);
        var top = TICKS + 2, bottom = AXIS - 2;
        el("line", { x1: x, x2: x, y1: top, y2: lane.y + LANE }, g);
        el("polygon", { points: [x, top, x + 20, top, x + 15, (top + bottom) / 2, x + 20, bottom, x, bottom].join(" ") }, g);
        var label = text(g, { x: x + 8, y: (top + bottom) / 2 + 1 }, String(m.n));
        label.setAttribute("dominant-baseline", "middle");
        var title = el("title", {}, g);
        title.textContent = "Finding " + m.n + ": " + m.title;
        g.addEventListener("click", function () {
          location.hash = "#finding-" + m.n;
        });
      });

      svg.setAttribute("data-slices", drawn);
      var ws = (v1 - v0) / 10;
      win.textContent = fmtTime(v0, ws) + " \u2013 " + fmtTime(v1, ws) + (v0 > 0 || v1 < total ? " (zoomed)" : "");
    }

    function setView(a, b) {
      var span = Math.min(Math.max(b - a, 10), total);
      a = Math.max(0, Math.min(a, total - span));
      v0 = a;
      v1 = a + span;
      render();
    }

    function zoomAt(px, factor) {
      var f = Math.min(Math.max((px - LABEL) / plotW, 0), 1);
      var t = v0 + f * (v1 - v0);
      var span = (v1 - v0) * factor;
      setView(t - f * span, t - f * span + span);
    }

    function localX(e) {
      var r = svg.getBoundingClientRect();
      return ((e.clientX - r.left) * svg.viewBox.baseVal.width) / r.width;
    }

    svg.addEventListener("wheel", function (e) {
      var x = localX(e);
      if (x < LABEL) {
        return;
      }
      e.preventDefault();
      if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        var d = e.shiftKey ? e.deltaY : e.deltaX;
        var dt = (d / plotW) * (v1 - v0);
        setView(v0 + dt, v1 + dt);
        return;
      }
      zoomAt(x, Math.exp(e.deltaY * 0.0015));
    }, { passive: false });

    var drag = null;
    svg.addEventListener("mousedown", function (e) {
      if (e.button !== 0 || localX(e) < LABEL) {
        return;
      }
      drag = { x: e.clientX, v0: v0, v1: v1 };
      svg.classList.add("panning");
      e.preventDefault();
    });
    window.addEventListener("mousemove", function (e) {
      if (!drag) {
        return;
      }
      var r = svg.getBoundingClientRect();
      var dt = ((drag.x - e.clientX) / (r.width * plotW / svg.viewBox.baseVal.width)) * (drag.v1 - drag.v0);
      setView(drag.v0 + dt, drag.v1 + dt);
    });
    window.addEventListener("mouseup", function () {
      drag = null;
      svg.classList.remove("panning");
    });
    svg.addEventListener("dblclick", function () {
      setView(0, total);
    });

    Array.prototype.forEach.call(document.querySelectorAll("[data-zoom]"), function (b) {
      b.addEventListener("click", function () {
        var how = b.getAttribute("data-zoom");
        if (how === "reset") {
          setView(0, total);
        } else {
          zoomAt(LABEL + plotW / 2, how === "in" ? 0.5 : 2);
        }
      });
    });

    function line(parent, key, value, cls) {
      var d = document.createElement("div");
      if (key) {
        var k = document.createElement("span");
        k.className = "k";
        k.textContent = key + " ";
        d.appendChild(k);
      }
      var v = document.createElement("span");
      v.textContent = value;
      if (cls) {
        v.className = cls;
      }
      d.appendChild(v);
      parent.appendChild(d);
    }

    svg.addEventListener("mousemove", function (e) {
      var r = e.target.closest ? e.target.closest(".sl") : null;
      if (!r || drag) {
        tip.hidden = true;
        return;
      }
      var j = Number(r.getAttribute("data-i")) * N;
      var n = Number(r.getAttribute("data-n"));
      while (tip.firstChild) {
        tip.removeChild(tip.firstChild);
      }
      var head = document.createElement("b");
      head.textContent = S[SL[j + 3]] + "  " + S[SL[j + 6]];
      tip.appendChild(head);
      if (S[SL[j + 4]]) {
        line(tip, "on", S[SL[j + 4]]);
      }
      line(tip, "returned", S[SL[j + 5]]);
      line(tip, "began at", fmtTime(SL[j + 1], 100) + (SL[j + 8] & 1 ? ", before the attach: it had run at least this long" : ""));
      line(tip, "", C[SL[j + 7]].label);
      if (SL[j + 9]) {
        line(tip, "", "part of finding " + SL[j + 9], "f");
      }
      if (n > 1) {
        line(tip, "", n + " calls drawn as one at this zoom: zoom in to see each", "k");
      }
      tip.hidden = false;
      var x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      var yy = e.clientY + 16;
      if (yy + tip.offsetHeight > window.innerHeight - 8) {
        yy = e.clientY - tip.offsetHeight - 10;
      }
      tip.style.left = x + "px";
      tip.style.top = yy + "px";
    });
    svg.addEventListener("mouseleave", function () {
      tip.hidden = true;
    });

    var pending = 0;
    window.addEventListener("resize", function () {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(render);
    });
    window.addEventListener("beforeprint", render);
    // ?t=<from>,<to> in seconds opens the timeline zoomed, for a link.
    var tv = (new URLSearchParams(window.location.search).get("t") || "").split(",");
    if (tv.length === 2 && isFinite(tv[0]) && isFinite(tv[1]) && Number(tv[1]) > Number(tv[0])) {
      setView(Number(tv[0]) * 1e6, Number(tv[1]) * 1e6);
    } else {
      render();
    }
    svg.setAttribute("data-ready", "1");
  }

  function flame() {
    var host = document.getElementById("fg-host");
    if (!host || !window.snagFlameGraph) {
      return;
    }
    var root = host.shadowRoot;
    if (!root) {
      // A browser without declarative shadow DOM leaves the template inert.
      var tpl = host.querySelector("template");
      if (!tpl) {
        return;
      }
      root = host.attachShadow({ mode: "open" });
      root.appendChild(tpl.content.cloneNode(true));
      tpl.remove();
    }
    var svg = root.querySelector("svg");
    if (!svg) {
      return;
    }
    var input = document.getElementById("fg-search");
    var out = document.getElementById("fg-matched");
    var fg = window.snagFlameGraph(svg, root, function () {
      input.focus();
      input.select();
    });
    function run() {
      fg.search(input.value);
      out.textContent = input.value ? fg.matched() : "";
    }
    input.addEventListener("input", run);
    input.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        input.value = "";
        fg.reset();
        run();
      }
    });
    document.getElementById("fg-reset").addEventListener("click", function () {
      input.value = "";
      fg.reset();
      run();
    });
    var s = new URLSearchParams(window.location.search).get("s");
    if (s) {
      input.value = s;
      run();
    }
    host.setAttribute("data-frames", svg.querySelectorAll("g.f").length);
    host.setAttribute("data-ready", "1");
  }

  timeline();
  flame();
  document.documentElement.setAttribute("data-ready", "1");
})();
