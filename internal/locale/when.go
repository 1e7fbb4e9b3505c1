package locale

import (
	"strconv"
	"time"
)

// dutchMonths are CLDR's abbreviated month names for Dutch, the same in
// the Netherlands and in Belgium.
var dutchMonths = [12]string{"jan.", "feb.", "mrt.", "apr.", "mei", "jun.", "jul.", "aug.", "sep.", "okt.", "nov.", "dec."}

// monthNames are the months of the locales whose names are not Go's
// English ones.
var monthNames = map[string][12]string{"nl-BE": dutchMonths, "nl-NL": dutchMonths}

// When writes a moment for a reader of locale, in t's zone, named, since
// a mail or page cannot know its reader's: "1 Apr 2026 09:30 UTC", "1 apr.
// 2026 11:30 CEST".
func When(t time.Time, locale string) string {
	months, ok := monthNames[locale]
	if !ok {
		return t.Format("2 Jan 2006 15:04 MST")
	}
	return strconv.Itoa(t.Day()) + " " + months[t.Month()-1] + " " + t.Format("2006 15:04 MST")
}
