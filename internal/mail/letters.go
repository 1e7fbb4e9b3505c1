package mail

import (
	_ "embed" // the layouts
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// textLayout and htmlLayout are the two parts of every letter, with the
// letter's words left out.
var (
	//go:embed templates/layout.txt
	textLayout string
	//go:embed templates/layout.html
	htmlLayout string
)

// parsedLetter is one letter in one locale: the layout with the letter's
// catalogue entries as its parts.
type parsedLetter struct {
	text *texttemplate.Template // "subject" and "text"
	html *htmltemplate.Template
}

// letters holds every letter of every locale, by locale and letter name.
// They are parsed once, when the program starts, not for each mail: the
// layout and the catalogue are compiled in, so an entry that does not parse
// is a bug the tests catch, and the program does not start with it.
var letters = mustParseLetters()

func mustParseLetters() map[string]map[string]parsedLetter {
	l, err := parseLetters()
	if err != nil {
		panic(err)
	}
	return l
}

// parseLetters parses the layout once per letter and locale, with the
// letter's entries, its own or shared, as the layout's named templates.
func parseLetters() (map[string]map[string]parsedLetter, error) {
	// Every part any letter has is defined in every letter's templates,
	// empty where the letter lacks it: the HTML template escapes the
	// layout's branches a letter never takes as well, and needs the parts
	// they name.
	parts := map[string]bool{}
	for _, cat := range catalogues {
		for key := range cat {
			parts[key[strings.IndexByte(key, '.')+1:]] = true
		}
	}
	all := map[string]map[string]parsedLetter{}
	for locale, cat := range catalogues {
		all[locale] = map[string]parsedLetter{}
		for key := range cat {
			name, ok := strings.CutSuffix(key, ".subject")
			if !ok {
				continue
			}
			entries := map[string]string{}
			for part := range parts {
				entries[part] = entry(cat, name, part)
			}
			p, err := parseLetter(entries)
			if err != nil {
				return nil, fmt.Errorf("mail: %s letter %q: %w", locale, name, err)
			}
			all[locale][name] = p
		}
	}
	return all, nil
}

// entry is the letter's own entry for part, or else the shared one.
func entry(cat map[string]string, letter, part string) string {
	if e, ok := cat[letter+"."+part]; ok {
		return e
	}
	return cat[part]
}

// plain is how an entry reads in the text part: without its emphasis.
var plain = strings.NewReplacer("<strong>", "", "</strong>", "")

// parseLetter parses the layouts with entries, which hold every part, empty
// where the letter lacks it.
func parseLetter(entries map[string]string) (parsedLetter, error) {
	// has tells the layout which parts the letter has, so that it leaves
	// out the paragraphs of the rest.
	has := func(part string) bool { return entries[part] != "" }
	text, err := texttemplate.New("layout.txt").Funcs(texttemplate.FuncMap{"has": has}).Parse(textLayout)
	if err != nil {
		return parsedLetter{}, err
	}
	html, err := htmltemplate.New("layout.html").Funcs(htmltemplate.FuncMap{"has": has}).Parse(htmlLayout)
	if err != nil {
		return parsedLetter{}, err
	}
	for part, e := range entries {
		if _, err := text.New(part).Parse(plain.Replace(e)); err != nil {
			return parsedLetter{}, err
		}
		if _, err := html.New(part).Parse(e); err != nil {
			return parsedLetter{}, err
		}
	}
	return parsedLetter{text: text, html: html}, nil
}
