(function () {
  'use strict';
  // Everything drawn comes from the JSON the page embeds; text from hosts only ever goes
  // into textContent or a canvas, never into markup.
  var el = document.getElementById('capo-data');
  if (!el) return;
  var data = JSON.parse(el.textContent);
  // [name, status index, started ms or null, duration ms, [phase, start ms, ms, ...]]
  var hosts = data.hosts;
  var tip = document.getElementById('tip');
  var filter = '';
  var DETAIL_ROWS = 300;
  var ROW = 16;
  var AXIS = 20;

  function shown(h) { return !filter || h[0].indexOf(filter) >= 0; }
  function fmt(ms) { return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s'; }

  // Sizes a canvas to its box at the screen's pixel density; returns its context and width.
  function setup(canvas, height) {
    var dpr = window.devicePixelRatio || 1;
    var width = Math.max(canvas.parentNode.clientWidth, 200);
    canvas.style.width = width + 'px';
    canvas.style.height = height + 'px';
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    var ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx: ctx, width: width };
  }

  function showTip(event, lines) {
    tip.textContent = lines.join('\n');
    tip.style.display = 'block';
    var x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    var y = event.clientY + 14;
    if (y + tip.offsetHeight > window.innerHeight) y = event.clientY - tip.offsetHeight - 8;
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  function describe(h) {
    var lines = [h[0] + '  ' + data.statuses[h[1]] + '  ' + fmt(h[3])];
    var seg = h[4];
    for (var j = 0; j < seg.length; j += 3) {
      lines.push('  ' + data.phases[seg[j]] + ': ' + fmt(seg[j + 2]) + ' (at ' + fmt(seg[j + 1]) + ')');
    }
    return lines;
  }

  // The status grid: one cell per host, in report order.
  var grid = document.getElementById('grid');
  var cell = hosts.length <= 500 ? 16 : hosts.length <= 3000 ? 10 : 7;
  var gap = cell > 8 ? 2 : 1;
  var columns = 1;
  function drawGrid() {
    if (!grid) return;
    columns = Math.max(1, Math.floor(Math.max(grid.parentNode.clientWidth, 200) / cell));
    var rows = Math.max(1, Math.ceil(hosts.length / columns));
    var c = setup(grid, rows * cell);
    for (var i = 0; i < hosts.length; i++) {
      var h = hosts[i];
      c.ctx.globalAlpha = shown(h) ? 1 : 0.12;
      c.ctx.fillStyle = data.colors[h[1]];
      c.ctx.fillRect((i % columns) * cell, Math.floor(i / columns) * cell, cell - gap, cell - gap);
    }
    c.ctx.globalAlpha = 1;
  }
  if (grid) {
    grid.addEventListener('mousemove', function (e) {
      var r = grid.getBoundingClientRect();
      var col = Math.floor((e.clientX - r.left) / cell);
      var i = Math.floor((e.clientY - r.top) / cell) * columns + col;
      if (col < columns && i >= 0 && i < hosts.length) showTip(e, describe(hosts[i]));
      else hideTip();
    });
    grid.addEventListener('mouseleave', hideTip);
  }

  // The timeline: a bar per host (connect, lock, then each step), sorted as asked. Past
  // DETAIL_ROWS hosts every host still gets a line, thinner, without its name.
  var timeline = document.getElementById('timeline');
  var sort = document.getElementById('tl-sort');
  var order = [];
  var rowHeight = ROW;
  function straggler(h) { return data.straggler_ms !== null && h[3] > data.straggler_ms; }

  function sortedHosts() {
    var list = [];
    for (var i = 0; i < hosts.length; i++) if (hosts[i][2] !== null && shown(hosts[i])) list.push(i);
    var how = sort ? sort.value : 'start';
    if (how === 'slowest') list.sort(function (a, b) { return hosts[b][3] - hosts[a][3] || a - b; });
    else if (how === 'start') list.sort(function (a, b) { return hosts[a][2] - hosts[b][2] || a - b; });
    return list;
  }

  function niceStep(span) {
    var raw = span / 8;
    var pow = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (raw <= steps[i] * pow) return steps[i] * pow;
    return 10 * pow;
  }

  function drawTimeline() {
    if (!timeline) return;
    order = sortedHosts();
    var n = order.length;
    var detailed = n <= DETAIL_ROWS;
    rowHeight = detailed ? ROW : 600 / Math.max(n, 1);
    var height = AXIS + (detailed ? Math.max(n, 1) * ROW : 600) + 4;
    var c = setup(timeline, height);
    var ctx = c.ctx;
    var label = detailed ? Math.min(180, c.width * 0.25) : 0;
    var span = Math.max(data.duration, 1);
    for (var i = 0; i < n; i++) span = Math.max(span, hosts[order[i]][2] + hosts[order[i]][3]);
    var scale = (c.width - label - 60) / span;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    var step = niceStep(span);
    for (var t = 0; t <= span; t += step) {
      var x = label + t * scale;
      ctx.fillStyle = '#e6e9ed';
      ctx.fillRect(x, AXIS - 4, 1, height - AXIS);
      ctx.fillStyle = '#5f6873';
      ctx.fillText(fmt(Math.round(t)), x + 2, 8);
    }
    for (var k = 0; k < n; k++) {
      var h = hosts[order[k]];
      var y = AXIS + k * rowHeight;
      var bar = detailed ? ROW - 4 : Math.max(rowHeight, 1);
      if (detailed) {
        ctx.fillStyle = data.colors[h[1]];
        ctx.fillRect(0, y + 3, 8, 8);
        ctx.fillStyle = '#1d2126';
        var name = h[0];
        while (name.length > 1 && ctx.measureText(name).width > label - 16) name = name.slice(0, -1);
        ctx.fillText(name === h[0] ? name : name + '\u2026', 12, y + 7);
      }
      var seg = h[4];
      for (var j = 0; j < seg.length; j += 3) {
        ctx.fillStyle = data.phase_colors[seg[j]];
        ctx.fillRect(label + seg[j + 1] * scale, y, Math.max(seg[j + 2] * scale, 1), bar);
      }
      if (straggler(h)) {
        // A straggler: its end is marked, and named with its time when there is room.
        var end = label + (h[2] + h[3]) * scale;
        ctx.fillStyle = '#d93b3b';
        ctx.fillRect(end + 1, y, 3, bar);
        if (detailed) ctx.fillText(fmt(h[3]), end + 6, y + 7);
      }
    }
    if (n === 0) {
      ctx.fillStyle = '#5f6873';
      ctx.fillText('no host ran', label + 4, AXIS + 8);
    }
  }
  if (timeline) {
    timeline.addEventListener('mousemove', function (e) {
      var r = timeline.getBoundingClientRect();
      var k = Math.floor((e.clientY - r.top - AXIS) / rowHeight);
      if (k >= 0 && k < order.length) showTip(e, describe(hosts[order[k]]));
      else hideTip();
    });
    timeline.addEventListener('mouseleave', hideTip);
  }
  if (sort) sort.addEventListener('change', drawTimeline);

  var input = document.getElementById('filter');
  if (input) {
    input.addEventListener('input', function () {
      filter = input.value.trim();
      drawGrid();
      drawTimeline();
    });
  }
  var pending = null;
  window.addEventListener('resize', function () {
    if (pending) clearTimeout(pending);
    pending = setTimeout(function () { drawGrid(); drawTimeline(); }, 100);
  });
  drawGrid();
  drawTimeline();
  // For whoever checks the page (the tests, bench/html.sh): drawn, how many, and when.
  document.body.setAttribute('data-drawn', String(hosts.length));
  document.body.setAttribute('data-drawn-ms', String(Math.round(performance.now())));
})();
