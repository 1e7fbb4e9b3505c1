package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestEveryDocCaddyfileAdapts adapts every ```caddyfile block of the README
// and of every file in docs/, as a newcomer pasting it would, so a doc
// written after TestDocumentedCaddyfiles's list cannot drift from the
// syntax. A snippet is often a part of a Caddyfile: a bare `mailgate` block
// goes into a site, a global options block gets a site after it, and a
// subdirective's block (`client`, `store`, …) goes into a mailgate block
// that has what every mailgate block needs. Adapting runs every check that
// names a file and line; TestDocumentedCaddyfiles validates its docs too.
func TestEveryDocCaddyfileAdapts(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../README.md")
	snippets := 0
	for _, doc := range docs {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range strings.Split(string(raw), "```caddyfile\n")[1:] {
			snippet, _, _ := strings.Cut(b, "```")
			snippets++
			if formatted := string(caddyfile.Format([]byte(snippet))); formatted != snippet {
				t.Errorf("%s: a snippet is not as caddy fmt prints it:\n%s\nwant:\n%s", doc, snippet, formatted)
			}
			site := docSnippetAsCaddyfile(snippet)
			if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site), nil); err != nil {
				t.Errorf("%s: a snippet does not adapt: %v\n%s", doc, err, snippet)
			}
		}
	}
	// The README alone has several; none found means the split broke.
	if snippets < 10 {
		t.Errorf("found %d Caddyfile snippets in the docs, want 10 or more", snippets)
	}
}

// docSnippetAsCaddyfile completes a doc's snippet into a whole Caddyfile.
func docSnippetAsCaddyfile(snippet string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(snippet), "\n")
	switch {
	case strings.HasPrefix(first, "mailgate"):
		return "example.com {\n" + snippet + "\treverse_proxy localhost:9\n}\n"
	case first == "{":
		return snippet + "example.com {\n\treverse_proxy localhost:9\n}\n"
	case !strings.Contains(first, ".") && !strings.Contains(first, ":"):
		// A subdirective's block: `client kiosk {`, `store redis {`.
		return "example.com {\n\tmailgate {\n\t\tbase_url https://example.com\n\t\toutbox ./outbox\n" +
			snippet + "\t}\n\treverse_proxy localhost:9\n}\n"
	}
	return snippet
}
