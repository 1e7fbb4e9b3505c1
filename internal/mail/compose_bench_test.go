package mail

import (
	"testing"
	"time"
)

// BenchmarkCompose measures what every mail costs before it is sent: the
// templates, the MIME writer and the headers.
func BenchmarkCompose(b *testing.B) {
	m := mailer(b, nil)
	for _, kind := range []string{"login", "code"} {
		l := goldenLetter(kind, "nl-BE")
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Compose(l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRender compares a letter's rendering, compiled (render) and
// from its templates (renderTemplates), without the MIME writer.
func BenchmarkRender(b *testing.B) {
	for _, kind := range []string{"login", "code"} {
		l := goldenLetter(kind, "nl-BE")
		for name, r := range map[string]func(Letter, *time.Location) (string, string, string, error){"compiled": render, "templates": renderTemplates} {
			b.Run(kind+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, _, err := r(l, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
