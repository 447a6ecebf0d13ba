'use strict';
// The asset page's price chart, drawn as SVG from /api/assets/{id}/candles: candles where the
// data are bars (real open, high, low, close), otherwise the consolidated line and one line per
// source. No library and nothing from the network but this site's own API.
(function() {
    const NS = 'http://www.w3.org/2000/svg';
    const W = 900, H = 320, PAD = {left: 70, right: 12, top: 12, bottom: 28};
    const HOUR = 3600e3, DAY = 24 * HOUR;
    const RANGES = {
        '24h': {span: DAY, interval: '5m'},
        '7d': {span: 7 * DAY, interval: '1h'},
        '30d': {span: 30 * DAY, interval: '1h'},
        '1y': {span: 365 * DAY, interval: '1d'},
        'all': {span: null, interval: null},
    };
    const COLOURS = ['#2563eb', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

    function el(name, attrs, parent) {
        const node = document.createElementNS(NS, name);
        for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
        if (parent) parent.appendChild(node);
        return node;
    }

    function money(value) {
        const n = Number(value);
        const digits = Math.abs(n) >= 1 ? 2 : Math.min(10, 3 - Math.floor(Math.log10(Math.abs(n) || 1)));
        return n.toLocaleString('en-US', {minimumFractionDigits: Math.abs(n) >= 1 ? 2 : 0, maximumFractionDigits: digits});
    }

    function when(ms, interval) {
        const iso = new Date(ms).toISOString();
        return interval === '1d' || interval === '1w' ? iso.slice(0, 10) : iso.slice(0, 16).replace('T', ' ');
    }

    async function fetchCandles(url, params) {
        const query = new URLSearchParams(params);
        const response = await fetch(`${url}?${query}`, {headers: {Accept: 'application/json'}});
        if (!response.ok) throw new Error(`${response.status} from the candles endpoint`);
        return response.json();
    }

    function points(body) {
        return body.results.filter((c) => c.close !== null).map((c) => ({
            t: Date.parse(c.start), open: +c.open, high: +c.high, low: +c.low, close: +c.close,
            bars: c.bars, sources: c.sources, quotes: c.quotes,
        }));
    }

    function draw(root, series, interval) {
        const svg = root.querySelector('svg');
        svg.replaceChildren();
        const all = series.flatMap((s) => s.points);
        const status = root.querySelector('.chart-status');
        svg.dataset.points = String(series[0].points.length);
        if (!all.length) {
            status.textContent = 'No quotes in this range.';
            return;
        }
        const candles = series[0].points.length > 0 && series[0].points.every((p) => p.bars);
        const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
        const lo = Math.min(...all.map((p) => (candles ? p.low : p.close)));
        const hi = Math.max(...all.map((p) => (candles ? p.high : p.close)));
        const x = (t) => PAD.left + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
        const y = (v) => PAD.top + (hi === lo ? 0.5 : (hi - v) / (hi - lo)) * (H - PAD.top - PAD.bottom);
        const grid = el('g', {class: 'grid axis'}, svg);
        for (let i = 0; i <= 4; i++) {
            const v = lo + (hi - lo) * i / 4;
            el('line', {x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v)}, grid);
            el('text', {x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end'}, grid).textContent = money(v);
        }
        for (let i = 0; i <= 4; i++) {
            const t = t0 + (t1 - t0) * i / 4;
            el('text', {x: x(t), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}, grid)
                .textContent = when(t, interval);
        }
        const main = series[0];
        if (candles) {
            const width = Math.max(1, Math.min(12, (W - PAD.left - PAD.right) / main.points.length * 0.7));
            const g = el('g', {class: 'candles'}, svg);
            for (const p of main.points) {
                const cls = p.close >= p.open ? 'up' : 'down';
                el('line', {class: cls, x1: x(p.t), x2: x(p.t), y1: y(p.high), y2: y(p.low)}, g);
                const top = y(Math.max(p.open, p.close));
                el('rect', {class: `point ${cls}`, x: x(p.t) - width / 2, y: top, width,
                    height: Math.max(1, y(Math.min(p.open, p.close)) - top)}, g);
            }
        } else {
            // The sources first, the consolidated line last, on top of them.
            [...series].reverse().forEach((s) => {
                if (!s.points.length) return;
                const main = s === series[0];
                const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.close).toFixed(1)}`).join('');
                el('path', {d, fill: 'none', stroke: s.colour, 'stroke-width': main ? 2.2 : 1.2,
                    'stroke-dasharray': main ? '' : '4 2', class: `line line-${s.name}`}, svg);
            });
            const g = el('g', {class: 'points'}, svg);
            for (const p of main.points) el('circle', {class: 'point', cx: x(p.t), cy: y(p.close), r: main.points.length > 120 ? 0.8 : 2, fill: main.colour}, g);
        }
        status.textContent = `${main.points.length} ${candles ? 'candles' : 'points'} (${interval}), ${when(t0, interval)} to ${when(t1, interval)} UTC`;
        hover(svg, series, x, y, interval, candles);
    }

    function hover(svg, series, x, y, interval, candles) {
        const cross = el('line', {class: 'grid', y1: PAD.top, y2: H - PAD.bottom, visibility: 'hidden'}, svg);
        const tip = el('text', {class: 'tooltip', x: PAD.left + 6, y: PAD.top + 14, visibility: 'hidden'}, svg);
        svg.addEventListener('mousemove', (event) => {
            const box = svg.getBoundingClientRect();
            const px = (event.clientX - box.left) * W / box.width;
            const main = series[0].points;
            if (!main.length) return;
            let best = main[0];
            for (const p of main) if (Math.abs(x(p.t) - px) < Math.abs(x(best.t) - px)) best = p;
            cross.setAttribute('x1', x(best.t));
            cross.setAttribute('x2', x(best.t));
            cross.setAttribute('visibility', 'visible');
            const parts = [when(best.t, interval)];
            parts.push(candles
                ? `O ${money(best.open)} H ${money(best.high)} L ${money(best.low)} C ${money(best.close)}`
                : `${series[0].name} ${money(best.close)}`);
            parts.push(`from ${best.sources.join(', ')}`);
            for (const s of series.slice(1)) {
                const match = s.points.find((p) => p.t === best.t);
                if (match) parts.push(`${s.name} ${money(match.close)}`);
            }
            tip.textContent = parts.join(' · ');
            tip.setAttribute('visibility', 'visible');
        });
        svg.addEventListener('mouseleave', () => {
            cross.setAttribute('visibility', 'hidden');
            tip.setAttribute('visibility', 'hidden');
        });
    }

    async function show(root, range) {
        const {candlesUrl, first, last} = root.dataset;
        const sources = JSON.parse(root.dataset.sources || '[]');
        const end = Date.parse(last) + 1000;
        let {span, interval} = RANGES[range];
        if (span === null) {
            span = end - Date.parse(first) + DAY;
            interval = span > 3 * 365 * DAY ? '1w' : span > 60 * DAY ? '1d' : span > 3 * DAY ? '1h' : '5m';
        }
        const params = {interval, from: new Date(end - span).toISOString(), to: new Date(end).toISOString()};
        root.querySelectorAll('.chart-ranges button').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === range)));
        root.querySelector('.chart-status').textContent = 'Loading…';
        root.dataset.state = 'loading';
        try {
            const consolidated = await fetchCandles(candlesUrl, params);
            const series = [{name: sources.length > 1 ? 'median' : (sources[0] || 'price'), colour: COLOURS[0], points: points(consolidated)}];
            if (sources.length > 1 && !series[0].points.every((p) => p.bars)) {
                const each = await Promise.all(sources.map((source) => fetchCandles(candlesUrl, {...params, source})));
                each.forEach((body, i) => series.push({name: sources[i], colour: COLOURS[(i + 1) % COLOURS.length], points: points(body)}));
            }
            draw(root, series, interval);
            const legend = root.querySelector('.chart-legend');
            legend.replaceChildren(...series.map((s) => {
                const item = document.createElement('span');
                item.style.setProperty('--swatch', s.colour);
                item.textContent = s.name;
                return item;
            }));
            root.dataset.state = 'ready';
            root.dataset.range = range;
        } catch (error) {
            root.querySelector('.chart-status').textContent = `The chart could not load: ${error.message}`;
            root.dataset.state = 'error';
        }
    }

    window.addEventListener('DOMContentLoaded', () => {
        document.querySelectorAll('.chart[data-candles-url]').forEach((root) => {
            root.querySelectorAll('.chart-ranges button').forEach((button) => {
                button.addEventListener('click', () => show(root, button.dataset.range));
            });
            show(root, root.dataset.initial || '30d');
        });
    });
})();
