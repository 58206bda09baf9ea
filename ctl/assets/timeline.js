// Draws the timeline `chaos-ctl report --html` embeds (ctl/src/timeline.rs builds the data):
// a lane per process with its states, kills/restarts/exits as marks, partitions and control
// windows as shaded bands, faults as points coloured by kind, on their connection's row. Zoomed out past BIN_LIMIT faults, the
// points become per-lane bins (their counts add up to the faults in view), so 100,000 faults stay
// responsive. `#selftest` in the URL runs a check a headless browser can read from the DOM.
(function () {
  'use strict';
  var BIN_LIMIT = 5000;
  var BINS = 240;
  var data = JSON.parse(document.getElementById('chaos-data').textContent);
  var S = data.strings;
  var F = data.faults;
  var nFaults = F.t.length;
  var lanes = data.lanes;
  var end = Math.max(data.meta.end_ms, 1);

  var STATE_COLOURS = { up: '#c9e7c9', starting: '#fde7b0', paused: '#c8d8f0', down: '#f3c6c6' };
  var CAT_COLOURS = {
    errno: '#d62728', reset: '#8c1c13', short: '#1f77b4', delay: '#9467bd', stall: '#17becf',
    toxic: '#e377c2', process: '#000000', datagram: '#bcbd22', storage: '#8c564b', quirk: '#ff7f0e',
    disk: '#7f7f7f'
  };
  var WINDOW_COLOURS = { partition: 'rgba(214,39,40,0.16)', 'rule-off': 'rgba(120,120,120,0.14)',
                         'disk-full': 'rgba(140,86,75,0.18)' };

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
    });
  }
  function secs(ms) { return (ms / 1000).toFixed(ms < 10000 ? 3 : 1) + ' s'; }

  // The header, the rules table and the lane list: plain HTML.
  var m = data.meta;
  document.getElementById('meta').innerHTML =
    'seed <code>' + esc(m.seed) + '</code> · policy <code>' + esc(m.policy) + '</code> · ' +
    (m.outcome ? 'program ' + esc(m.outcome) + ' · ' : '') + nFaults + ' fault(s) in ' +
    lanes.length + ' process lane(s) over ' + secs(end) + ' · log ' +
    m.sources.map(function (s) { return '<code>' + esc(s) + '</code>'; }).join(', ') +
    '<br>command: <code>' + esc(m.command) + '</code>' +
    '<br>reproduce: <code>' + esc(m.replay) + '</code> · freeze: <code>' + esc(m.freeze) + '</code>';
  var rows = '<tr><th>rule</th><th class="n">injected</th><th class="n">drawn</th>' +
    '<th>refused (why)</th></tr>';
  data.rules.forEach(function (r) {
    var refused = r.refused ? Object.keys(r.refused).map(function (k) {
      return k + ' ' + r.refused[k];
    }).join(', ') : '';
    rows += '<tr><td><code>' + esc(r.rule) + '</code></td><td class="n">' + esc(r.injected) +
      '</td><td class="n">' + esc(r.drawn == null ? '' : r.drawn) + '</td><td>' + esc(refused) +
      '</td></tr>';
  });
  document.getElementById('rules').innerHTML = rows;
  var rulesByName = {};
  data.rules.forEach(function (r) { rulesByName[r.rule] = r; });
  document.getElementById('lanes').innerHTML = lanes.map(function (l, i) {
    return '<li class="lane" data-lane="' + i + '">' + esc(l.label) +
      (l.pids.length ? ' (pid ' + l.pids.join(', ') + ')' : '') + '</li>';
  }).join('') + Object.keys(data.hidden).map(function (exe) {
    return '<li class="hidden-processes">' + esc(exe) + ' ×' + data.hidden[exe] +
      ' (no faults; no lane)</li>';
  }).join('');

  // Faults sorted by time, so a zoom window is a binary search away.
  var order = [];
  for (var i = 0; i < nFaults; i++) order.push(i);
  order.sort(function (a, b) { return F.t[a] - F.t[b]; });
  var sortedT = order.map(function (i) { return F.t[i]; });
  function lowerBound(x) {
    var lo = 0, hi = sortedT.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (sortedT[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }
  var cats = [];
  F.cat.forEach(function (c) { if (cats.indexOf(c) < 0) cats.push(c); });

  // Within its lane a fault sits on its connection's row (the connection, or the file, it acted
  // on), so a zoomed-in lane shows which connection took which faults. Rows are given in order of
  // each connection's first fault; past ROWS they share rows.
  var ROWS = 8;
  var rowOf = {};
  var rowsInLane = lanes.map(function () { return 0; });
  var Y = new Array(nFaults);
  order.forEach(function (i) {
    var id = F.lane[i] + ':' + F.conn[i];
    if (!(id in rowOf)) rowOf[id] = rowsInLane[F.lane[i]]++;
  });
  for (var k = 0; k < nFaults; k++) {
    var rows = Math.min(rowsInLane[F.lane[k]], ROWS);
    var row = rowOf[F.lane[k] + ':' + F.conn[k]] % ROWS;
    Y[k] = rows > 1 ? F.lane[k] - 0.3 + 0.6 * (row + 0.5) / rows : F.lane[k];
  }

  var chartEl = document.getElementById('chart');
  chartEl.style.height = Math.max(220, lanes.length * 30 + 130) + 'px';
  var chart = echarts.init(chartEl, null, { renderer: 'canvas' });

  var spanData = [];
  lanes.forEach(function (l, li) {
    l.spans.forEach(function (s) { spanData.push([s[0], s[1], li, s[2]]); });
  });
  var windowData = [];
  data.windows.forEach(function (w, wi) {
    if (w.lanes.length) w.lanes.forEach(function (li) { windowData.push([w.from, w.to, li, wi]); });
    else windowData.push([w.from, w.to, -1, wi]);
  });
  var markData = data.marks.map(function (mk, mi) { return [mk.t, mk.lane, mi]; });

  function band(api, lane, from, to, frac) {
    var a = api.coord([from, lane]);
    var b = api.coord([to, lane]);
    var h = api.size([0, 1])[1] * frac;
    return { x: a[0], y: a[1] - h / 2, width: Math.max(b[0] - a[0], 1), height: h };
  }
  function clip(rect, params) {
    return echarts.graphic.clipRectByRect(rect, {
      x: params.coordSys.x, y: params.coordSys.y,
      width: params.coordSys.width, height: params.coordSys.height
    });
  }

  var series = [{
    name: 'states', type: 'custom', data: spanData, encode: { x: [0, 1], y: 2 }, z: 1,
    renderItem: function (params, api) {
      var r = clip(band(api, api.value(2), api.value(0), api.value(1), 0.7), params);
      var d = spanData[params.dataIndex];
      return r && { type: 'rect', shape: r, style: { fill: STATE_COLOURS[d[3]] || '#eee' } };
    },
    tooltip: { formatter: function (p) {
      var d = spanData[p.dataIndex];
      return esc(lanes[d[2]].label) + ': ' + d[3] + ' ' + secs(d[0]) + ' – ' + secs(d[1]);
    } }
  }, {
    name: 'windows', type: 'custom', data: windowData, encode: { x: [0, 1] }, z: 2,
    renderItem: function (params, api) {
      var d = windowData[params.dataIndex];
      var w = data.windows[d[3]];
      var r;
      if (d[2] >= 0) {
        r = band(api, d[2], d[0], d[1], 1.0);
      } else {
        var a = api.coord([d[0], 0]);
        var b = api.coord([d[1], 0]);
        r = { x: a[0], y: params.coordSys.y, width: Math.max(b[0] - a[0], 1),
              height: params.coordSys.height };
      }
      r = clip(r, params);
      return r && { type: 'rect', shape: r, style: { fill: WINDOW_COLOURS[w.what] || 'rgba(0,0,0,0.1)' } };
    },
    tooltip: { formatter: function (p) {
      var w = data.windows[windowData[p.dataIndex][3]];
      return esc(w.label) + '<br>' + secs(w.from) + ' – ' + secs(w.to);
    } }
  }, {
    name: 'bins', type: 'custom', data: [], encode: { x: [0, 1], y: 2 }, z: 3,
    renderItem: function (params, api) {
      var d = api.value(3);
      var r = clip(band(api, api.value(2), api.value(0), api.value(1), 0.5), params);
      var alpha = Math.min(1, 0.25 + Math.log(1 + d) / 8);
      return r && { type: 'rect', shape: r, style: { fill: 'rgba(214,39,40,' + alpha + ')' } };
    },
    tooltip: { formatter: function (p) {
      return esc(lanes[p.value[2]].label) + ': ' + p.value[3] + ' fault(s) in ' +
        secs(p.value[0]) + ' – ' + secs(p.value[1]) + ' (click to zoom)';
    } }
  }, {
    name: 'marks', type: 'scatter', data: markData, symbol: 'triangle', symbolSize: 11, z: 5,
    itemStyle: { color: '#222' },
    tooltip: { formatter: function (p) {
      var mk = data.marks[p.value[2]];
      return esc(lanes[mk.lane].label) + ' ' + secs(mk.t) + ': ' + esc(mk.detail);
    } }
  }];
  cats.forEach(function (c) {
    series.push({
      name: S[c], type: 'scatter', data: [], symbolSize: 6, z: 4, large: true,
      largeThreshold: 2000, itemStyle: { color: CAT_COLOURS[S[c]] || '#555' },
      tooltip: { formatter: function (p) { return faultText(p.value[2], true); } }
    });
  });

  function faultText(i, html) {
    var lines = [
      'rule: ' + S[F.rule[i]], 'op: ' + S[F.op[i]], 'fault: ' + S[F.fault[i]],
      'key: ' + F.key[i], 'process: ' + lanes[F.lane[i]].label, 'at: ' + secs(F.t[i])
    ];
    if (S[F.conn[i]]) lines.push('connection: ' + S[F.conn[i]]);
    if (S[F.target[i]]) lines.push('peer/path: ' + S[F.target[i]]);
    if (F.bytes[i]) lines.push('bytes: ' + F.bytes[i]);
    var account = rulesByName[S[F.rule[i]]];
    if (account && account.drawn != null) {
      var refused = Object.keys(account.refused || {}).map(function (k) {
        return k + ' ' + account.refused[k];
      }).join(', ');
      lines.push('rule account: drawn ' + account.drawn + ', injected ' + account.injected +
        (refused ? ', refused: ' + refused : ''));
    }
    return lines.map(html ? esc : String).join(html ? '<br>' : '\n');
  }

  chart.setOption({
    animation: false,
    grid: { left: 170, right: 30, top: 40, bottom: 70 },
    legend: { top: 5, data: cats.map(function (c) { return S[c]; }).concat(['marks']) },
    tooltip: { trigger: 'item', confine: true },
    xAxis: { type: 'value', min: 0, max: end, axisLabel: { formatter: function (v) { return secs(v); } } },
    // A value axis with a label per lane, so that a fault can sit between lane centres (its
    // connection's row).
    yAxis: { type: 'value', inverse: true, min: -0.5, max: lanes.length - 0.5, interval: 1,
             splitLine: { show: false },
             axisTick: { customValues: lanes.map(function (l, i) { return i; }) },
             axisLabel: { width: 160, overflow: 'truncate',
                          customValues: lanes.map(function (l, i) { return i; }),
                          formatter: function (v) {
               var l = lanes[Math.round(v)];
               return l && Math.abs(v - Math.round(v)) < 1e-6 ? l.label : '';
             } } },
    dataZoom: [{ type: 'inside', xAxisIndex: 0, filterMode: 'none' },
               { type: 'slider', xAxisIndex: 0, filterMode: 'none', bottom: 15 }],
    series: series
  });

  var view = { from: 0, to: end, mode: 'points', drawn: 0, binned: 0 };
  // Shows the faults between `from` and `to`: each as a point, or binned when there are more
  // than BIN_LIMIT of them.
  function show(from, to) {
    var lo = lowerBound(from), hi = lowerBound(to + 1e-9);
    var perCat = {};
    cats.forEach(function (c) { perCat[c] = []; });
    var bins = [];
    view.from = from; view.to = to; view.drawn = 0; view.binned = 0;
    if (hi - lo > BIN_LIMIT) {
      view.mode = 'bins';
      var width = Math.max((to - from) / BINS, 1e-6);
      var counts = {};
      for (var k = lo; k < hi; k++) {
        var i = order[k];
        var b = Math.min(BINS - 1, Math.floor((F.t[i] - from) / width));
        var id = F.lane[i] * BINS + b;
        counts[id] = (counts[id] || 0) + 1;
      }
      Object.keys(counts).forEach(function (id) {
        var lane = Math.floor(id / BINS), b = id % BINS;
        bins.push([from + b * width, from + (b + 1) * width, lane, counts[id]]);
        view.binned += counts[id];
      });
    } else {
      view.mode = 'points';
      for (var j = lo; j < hi; j++) {
        var f = order[j];
        perCat[F.cat[f]].push([F.t[f], Y[f], f]);
        view.drawn++;
      }
    }
    var update = [{ name: 'bins', data: bins }];
    cats.forEach(function (c) { update.push({ name: S[c], data: perCat[c] }); });
    chart.setOption({ series: update });
  }
  function zoomed() {
    var axis = chart.getModel().getComponent('xAxis', 0).axis;
    var ext = axis.scale.getExtent();
    show(ext[0], ext[1]);
  }
  chart.on('datazoom', zoomed);
  show(0, end);
  // Since navigation began: parsing the page, the chart library and the data, and the first draw.
  var readyMs = performance.now();

  var details = document.getElementById('details');
  chart.on('click', function (p) {
    if (p.seriesName === 'bins') {
      chart.dispatchAction({ type: 'dataZoom', startValue: p.value[0], endValue: p.value[1] });
    } else if (p.seriesName === 'marks') {
      var mk = data.marks[p.value[2]];
      details.textContent = lanes[mk.lane].label + ' at ' + secs(mk.t) + ': ' + mk.detail;
    } else if (p.seriesName === 'windows') {
      var w = data.windows[windowData[p.dataIndex][3]];
      details.textContent = w.label + ' from ' + secs(w.from) + ' to ' + secs(w.to);
    } else if (p.seriesName !== 'states' && p.value && p.value.length === 3) {
      details.textContent = faultText(p.value[2], false);
      details.setAttribute('data-fault', p.value[2]);
    }
  });
  window.addEventListener('resize', function () { chart.resize(); });

  // What was drawn, for a headless browser to read from the DOM (`--dump-dom`): lanes, faults as
  // points or in bins, windows, and whether a click on a fault showed its key.
  function selfCheck() {
    var out = {
      lanes: lanes.map(function (l) { return l.label; }),
      // The most connection rows any lane has: faults grouped by connection.
      conn_rows: Math.max.apply(null, [0].concat(rowsInLane)),
      faults: nFaults,
      mode_all: view.mode, drawn_all: view.drawn, binned_all: view.binned,
      windows: data.windows.map(function (w) { return { what: w.what, from: w.from, to: w.to, lanes: w.lanes }; }),
      marks: data.marks.length, ready_ms: Math.round(readyMs),
      clicked_key: null, expected_key: null, errors: window.chaosErrors
    };
    if (nFaults > 0) {
      var first = order[0];
      // Zoom in on the first fault so it is drawn as a point, then click it where it is drawn.
      var span = Math.max(end / 1e4, 0.001);
      chart.dispatchAction({ type: 'dataZoom', startValue: F.t[first] - span, endValue: F.t[first] + span });
      zoomed();
      out.mode_zoomed = view.mode;
      out.drawn_zoomed = view.drawn;
      var xy = chart.convertToPixel({ gridIndex: 0 }, [F.t[first], Y[first]]);
      var canvas = chartEl.querySelector('canvas');
      var box = canvas.getBoundingClientRect();
      ['mousemove', 'mousedown', 'mouseup', 'click'].forEach(function (type) {
        canvas.dispatchEvent(new MouseEvent(type, {
          bubbles: true, clientX: box.left + xy[0], clientY: box.top + xy[1]
        }));
      });
      out.expected_key = F.key[first];
      var shown = details.textContent.match(/^key: (.*)$/m);
      out.clicked_key = shown ? shown[1] : null;
      out.details = details.textContent;
      chart.dispatchAction({ type: 'dataZoom', start: 0, end: 100 });
      zoomed();
    }
    document.getElementById('self-check').textContent = JSON.stringify(out);
  }
  if (location.hash === '#selftest') selfCheck();
  window.chaosTimeline = { chart: chart, view: view, show: show, selfCheck: selfCheck };
})();
