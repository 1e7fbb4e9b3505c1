package mail

import "testing"

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
