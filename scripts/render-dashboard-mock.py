#!/usr/bin/env python3
"""Draws docs/img/grafana-mailgate.png: a mock-up of the Grafana dashboard in
docs/grafana-mailgate.json, laid out from its panels' grid positions, with
made-up sample curves and values (not a running Grafana), screenshotted with
headless Chromium.

    scripts/render-dashboard-mock.py   # from the repository's root
"""
import html
import json
import math
import os
import random
import subprocess
import tempfile

random.seed(7)
dash = json.load(open("docs/grafana-mailgate.json"))
COL, ROW = 60, 30  # pixels per grid column (24) and grid row
WIDTH = 24 * COL
COLORS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9"]
STATS = {"Requests allowed /s": "412 req/s", "Refused or unavailable": "3.1%", "503 from the guard (5m)": "0",
         "Mail queue depth": "2", "Revocation feed lag": "0.41 s", "Signing key age": "12.3 days", "Sign-outs (1h)": "57"}

# Sample label values for the legends.
SAMPLES = {"decision": ["allowed", "redirected", "refused"], "method": ["link", "code", "password"],
           "reason": ["link_dead", "wrong_code", "bad_credentials"], "limit": ["mails_per_address"] * 3,
           "template": ["login", "code", "invitation"], "realm": ["default", "staff", "shop"],
           "backend": ["redis"] * 3, "op": ["get", "take", "incr"], "kind": ["session", "access_token", "user_jwt"]}


def curve(w, h, level, noise):
    pts = []
    for i in range(61):
        v = level * (1 + 0.35 * math.sin(i / 6 + level)) + random.uniform(-noise, noise)
        pts.append(f"{i * w / 60:.1f},{h - max(0.0, min(1.0, v)) * h:.1f}")
    return " ".join(pts)


boxes, bottom = [], 0
for p in dash["panels"]:
    g = p["gridPos"]
    x, y, w, h = g["x"] * COL, g["y"] * ROW, g["w"] * COL - 8, g["h"] * ROW - 8
    bottom = max(bottom, y + h + 8)
    title = html.escape(p["title"])
    if p["type"] == "row":
        boxes.append(f'<div class="row" style="left:{x}px;top:{y}px;width:{w}px">{title}</div>')
        continue
    if p["type"] == "stat":
        body = f'<div class="stat">{STATS.get(p["title"], "-")}</div>'
    else:
        cw, ch = w - 20, h - 70
        lines, legend = [], []
        for i, t in enumerate(p["targets"][:3] if len(p["targets"]) > 1 else [p["targets"][0]] * 3):
            c = COLORS[i % len(COLORS)]
            lines.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{curve(cw, ch, 0.25 + 0.2 * i, 0.05)}"/>')
            label = t["legendFormat"]
            for key, values in SAMPLES.items():
                label = label.replace("{{" + key + "}}", values[i if len(p["targets"]) == 1 else 0])
            legend.append(f'<span style="color:{c}">&#9644;</span> {html.escape(label)}')
        body = (f'<svg width="{cw}" height="{ch}">{"".join(lines)}</svg>'
                f'<div class="legend">{" &nbsp; ".join(legend)}</div>')
    boxes.append(f'<div class="panel" style="left:{x}px;top:{y}px;width:{w}px;height:{h}px">'
                 f'<div class="title">{title}</div>{body}</div>')

page = f"""<!doctype html><meta charset="utf-8"><style>
body{{margin:0;background:#111217;font:13px Inter,Helvetica,Arial,sans-serif;color:#ccccdc}}
.bar{{height:40px;padding:0 16px;display:flex;align-items:center;gap:16px;border-bottom:1px solid #2a2d35}}
.bar b{{font-size:16px;color:#fff}} .var{{background:#22252b;padding:4px 8px;border-radius:2px}}
.grid{{position:relative;margin:12px;width:{WIDTH}px;height:{bottom}px}}
.panel{{position:absolute;background:#181b1f;border:1px solid #2a2d35;border-radius:2px;padding:8px 10px;box-sizing:border-box}}
.title{{font-weight:500;color:#fff;margin-bottom:8px}}
.row{{position:absolute;font-weight:500;font-size:15px;color:#fff}}
.stat{{font-size:34px;color:#73bf69;font-weight:500;margin-top:6px}}
.legend{{font-size:11px;margin-top:4px;white-space:nowrap;overflow:hidden}}
</style>
<div class="bar"><b>mailgate</b><span class="var">Data source: Prometheus</span><span class="var">Realm: All</span>
<span style="margin-left:auto">Last 6 hours &middot; mock-up with sample data</span></div>
<div class="grid">{"".join(boxes)}</div>"""

with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "dashboard.html")
    open(src, "w").write(page)
    out = os.path.abspath("docs/img/grafana-mailgate.png")
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={WIDTH + 24},{bottom + 64}", f"--screenshot={out}", "file://" + src],
                   check=True, capture_output=True)
print("wrote docs/img/grafana-mailgate.png")
