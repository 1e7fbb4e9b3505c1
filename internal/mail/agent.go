package mail

import "strings"

// A mail says which browser asked for it, so that a person who did not ask
// can tell. A raw User-Agent says it in a way few people read ("Mozilla/5.0
// (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/…"), so
// the common browsers and systems are named from a small table of the
// tokens their User-Agents carry: a table, not a full parser, because the
// line only has to be recognisable, and one a visitor can forge anyway.
// Anything the table does not know is shown as sent, cut short.

// browsers are tried in order: Edge and Opera also say Chrome, Chrome also
// says Safari, and Chrome and Firefox on iOS say neither.
var browsers = []struct{ token, name string }{
	{"Edg/", "Edge"}, {"EdgiOS/", "Edge"}, {"EdgA/", "Edge"},
	{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Chromium/", "Chromium"},
	{"Safari/", "Safari"},
}

// systems are tried in order: Android also says Linux, iOS says "like Mac
// OS X", and ChromeOS says Linux too on some devices.
var systems = []struct{ token, name string }{
	{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"},
	{"CrOS", "ChromeOS"}, {"Windows", "Windows"}, {"Macintosh", "macOS"},
	{"Linux", "Linux"},
}

// onWord joins a browser and its system, per locale.
var onWord = map[string]string{"nl-BE": "op", "nl-NL": "op"}

// describeAgent names the browser behind ua in locale's words, "Chrome on
// Linux", or returns ua cut to maxAgentRunes when the table does not know
// it.
func describeAgent(ua, locale string) string {
	browser, system := lookup(ua, browsers), lookup(ua, systems)
	if browser == "" || system == "" {
		if r := []rune(ua); len(r) > maxAgentRunes {
			return string(r[:maxAgentRunes]) + "…"
		}
		return ua
	}
	on, ok := onWord[locale]
	if !ok {
		on = "on"
	}
	return browser + " " + on + " " + system
}

// lookup returns the name of the first entry whose token ua carries.
func lookup(ua string, table []struct{ token, name string }) string {
	for _, e := range table {
		if strings.Contains(ua, e.token) {
			return e.name
		}
	}
	return ""
}
