package caddymodule

import (
	"fmt"
	"net/http"
	"testing"
)

// contrastScript finds, for every element that shows text, its colour and
// the colour behind it (the nearest ancestor with an opaque background), and
// returns the pair with the lowest WCAG contrast ratio.
const contrastScript = `
function rgb(s) { const m = s.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; }
function lum(c) {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function behind(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.a > 0) return c;
  }
  return rgb(getComputedStyle(document.documentElement).backgroundColor || "rgb(255,255,255)");
}
let worst = {ratio: 99};
for (const el of document.querySelectorAll("body *")) {
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== "") || el.tagName === "INPUT" || el.tagName === "BUTTON";
  if (!own) continue;
  const fg = rgb(getComputedStyle(el).color), bg = behind(el);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  if (ratio < worst.ratio) worst = {ratio, tag: el.tagName + (el.className ? "." + el.className : ""), fg: getComputedStyle(el).color, bg: JSON.stringify(bg), text: (el.textContent || el.value || "").trim().slice(0, 40)};
}
return worst;`

// TestPagesReachContrastAA checks every text/background pair of mailgate's
// pages against WCAG AA (4.5:1) in the light and the dark scheme, with the
// colours a real browser computes from the stylesheet.
func TestPagesReachContrastAA(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	b := e.browser(t)
	b.requestLink("alice@example.com", "/")
	link := e.mailedLink(t, "alice@example.com")
	pages := map[string]string{
		"login":   e.base + "/.mailgate/login",
		"confirm": link,
		"invalid": e.base + "/.mailgate/link?t=unknown",
		"logout":  e.base + "/.mailgate/logout",
	}
	for _, scheme := range []string{"light", "dark"} {
		wd.call(http.MethodPost, wd.session+"/goog/cdp/execute", map[string]any{
			"cmd":    "Emulation.setEmulatedMedia",
			"params": map[string]any{"features": []map[string]string{{"name": "prefers-color-scheme", "value": scheme}}},
		}, nil)
		for name, url := range pages {
			wd.open(url)
			// An error message, as a refused form shows it, is checked too.
			wd.script(`const p = document.createElement("p"); p.className = "error"; p.textContent = "error text"; document.querySelector("main").appendChild(p);`)
			worst, _ := wd.script(contrastScript).(map[string]any)
			ratio, _ := worst["ratio"].(float64)
			if ratio < 4.5 {
				t.Errorf("%s page, %s scheme: %s %q is %v on %v, contrast %.2f:1, below 4.5:1",
					name, scheme, worst["tag"], worst["text"], worst["fg"], worst["bg"], ratio)
			} else {
				t.Logf("%s page, %s scheme: lowest contrast %s", name, scheme, fmt.Sprintf("%.2f:1 (%v)", ratio, worst["tag"]))
			}
		}
	}
}
