package web

// catalogues hold the text of the pages, per locale. Keys are used by the
// templates as {{.T.key}}; a value with a verb is used with printf.
var catalogues = map[string]map[string]string{
	"en-GB": {
		"lang":              "en-GB",
		"continue":          "Continue",
		"sign_in":           "Sign in",
		"sign_in_to":        "Sign in to %s",
		"email_label":       "Email address",
		"send_link":         "Email me a sign-in link",
		"login_intro":       "Enter your email address and we will send you a link to sign in. No password needed.",
		"invalid_email":     "Please enter a valid email address, such as name@example.com.",
		"sent_title":        "Check your inbox",
		"sent_body":         "If %s may sign in here, we have just sent a sign-in link to that address.",
		"sent_expiry":       "The link works once and expires in %d minutes. You can close this page.",
		"sent_again":        "Nothing arrived? Check your spam folder, or send a new link.",
		"confirm_title":     "Continue signing in",
		"confirm_body":      "Press the button to finish signing in to %s.",
		"confirm_button":    "Sign in",
		"invalid_title":     "This link no longer works",
		"invalid_body":      "Sign-in links work once and only for a short time, and a newer link replaces an older one. Enter your email address to get a new link.",
		"send_failed_title": "We could not send the email",
		"send_failed_body":  "Something went wrong while sending your sign-in link. Please try again in a few minutes.",
		"try_again":         "Try again",
		"logout_title":      "Sign out",
		"logout_body":       "Do you want to sign out of %s?",
		"logout_button":     "Sign out",
		"signed_out_title":  "You have signed out",
		"signed_out_body":   "You have been signed out on this device.",
		"sign_in_again":     "Sign in again",
		"bad_form_title":    "This form has expired",
		"bad_form_body":     "For your security, the form could not be accepted. Please go back, reload the page and try again.",
	},
	"nl-NL": {
		"lang":              "nl-NL",
		"continue":          "Doorgaan",
		"sign_in":           "Inloggen",
		"sign_in_to":        "Inloggen bij %s",
		"email_label":       "E-mailadres",
		"send_link":         "Stuur me een inloglink",
		"login_intro":       "Vul je e-mailadres in, dan sturen we je een link om in te loggen. Je hebt geen wachtwoord nodig.",
		"invalid_email":     "Vul een geldig e-mailadres in, zoals naam@voorbeeld.nl.",
		"sent_title":        "Kijk in je inbox",
		"sent_body":         "Als %s hier mag inloggen, hebben we zojuist een inloglink naar dat adres gestuurd.",
		"sent_expiry":       "De link werkt één keer en verloopt over %d minuten. Je kunt deze pagina sluiten.",
		"sent_again":        "Niets ontvangen? Kijk in je map met ongewenste e-mail of vraag een nieuwe link aan.",
		"confirm_title":     "Verder met inloggen",
		"confirm_body":      "Klik op de knop om in te loggen bij %s.",
		"confirm_button":    "Inloggen",
		"invalid_title":     "Deze link werkt niet meer",
		"invalid_body":      "Een inloglink werkt maar één keer en maar even, en een nieuwere link vervangt een oudere. Vul je e-mailadres in voor een nieuwe link.",
		"send_failed_title": "We konden de e-mail niet versturen",
		"send_failed_body":  "Er ging iets mis bij het versturen van je inloglink. Probeer het over een paar minuten opnieuw.",
		"try_again":         "Opnieuw proberen",
		"logout_title":      "Uitloggen",
		"logout_body":       "Wil je uitloggen bij %s?",
		"logout_button":     "Uitloggen",
		"signed_out_title":  "Je bent uitgelogd",
		"signed_out_body":   "Je bent op dit apparaat uitgelogd.",
		"sign_in_again":     "Opnieuw inloggen",
		"bad_form_title":    "Dit formulier is verlopen",
		"bad_form_body":     "Voor je veiligheid konden we het formulier niet aannemen. Ga terug, laad de pagina opnieuw en probeer het nog eens.",
	},
	"nl-BE": {
		"lang":              "nl-BE",
		"continue":          "Verdergaan",
		"sign_in":           "Aanmelden",
		"sign_in_to":        "Aanmelden bij %s",
		"email_label":       "E-mailadres",
		"send_link":         "Stuur mij een aanmeldlink",
		"login_intro":       "Vul uw e-mailadres in en wij sturen u een link om u aan te melden. U hebt geen wachtwoord nodig.",
		"invalid_email":     "Gelieve een geldig e-mailadres in te vullen, zoals naam@voorbeeld.be.",
		"sent_title":        "Bekijk uw mailbox",
		"sent_body":         "Als %s zich hier mag aanmelden, hebben wij zonet een aanmeldlink naar dat adres gestuurd.",
		"sent_expiry":       "De link werkt één keer en vervalt binnen %d minuten. U mag deze pagina sluiten.",
		"sent_again":        "Niets ontvangen? Kijk in uw map met ongewenste e-mail of vraag een nieuwe link aan.",
		"confirm_title":     "Verder met aanmelden",
		"confirm_body":      "Klik op de knop om u aan te melden bij %s.",
		"confirm_button":    "Aanmelden",
		"invalid_title":     "Deze link werkt niet meer",
		"invalid_body":      "Een aanmeldlink werkt maar één keer en slechts korte tijd, en een nieuwere link vervangt een oudere. Vul uw e-mailadres in voor een nieuwe link.",
		"send_failed_title": "Wij konden de e-mail niet versturen",
		"send_failed_body":  "Er liep iets mis bij het versturen van uw aanmeldlink. Gelieve het binnen enkele minuten opnieuw te proberen.",
		"try_again":         "Opnieuw proberen",
		"logout_title":      "Afmelden",
		"logout_body":       "Wilt u zich afmelden bij %s?",
		"logout_button":     "Afmelden",
		"signed_out_title":  "U bent afgemeld",
		"signed_out_body":   "U bent op dit toestel afgemeld.",
		"sign_in_again":     "Opnieuw aanmelden",
		"bad_form_title":    "Dit formulier is vervallen",
		"bad_form_body":     "Voor uw veiligheid konden wij het formulier niet aanvaarden. Ga terug, herlaad de pagina en probeer het opnieuw.",
	},
}

// DefaultLocale is the locale used when none, or an unknown one, is asked.
const DefaultLocale = "en-GB"

// Supported reports whether pages can be shown in locale.
func Supported(locale string) bool {
	_, ok := catalogues[locale]
	return ok
}

func catalogue(locale string) map[string]string {
	if c, ok := catalogues[locale]; ok {
		return c
	}
	return catalogues[DefaultLocale]
}
