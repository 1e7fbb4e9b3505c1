package mail

// catalogues hold the words of the letters, per locale, for the layout in
// templates/layout.txt and layout.html to put in place. A key
// "<letter>.<part>" belongs to one letter ("login.subject"); a key without
// a letter ("hello") is used by every letter that has no part of its own
// by that name. A letter shows the parts it has and leaves out the rest, so
// a new letter is a set of entries here, per locale, and a new layout part
// only when it needs a shape the layout does not have yet.
//
// They are a Go map, like internal/web's page catalogue, so that the pages
// and the mails of a locale are translated the same way and a missing
// entry shows up as a test failure, not as a file nobody added. Unlike the
// pages' printf verbs, an entry is a template: a letter fills in up to six
// values, and {{.SiteName}} says which one goes where in every language's
// word order. An entry may wrap a value in <strong>, which the HTML part
// keeps and the text part drops; it holds no other markup, and the values
// are escaped by the HTML part's template as before.
//
// The parts, in the order the layout shows them:
//
//	subject        the Subject header
//	title          the HTML part's <title>
//	hello          the greeting, a paragraph of its own
//	intro          who asked for the letter; app_intro instead when an app did
//	body           a paragraph after the intro
//	new_account    when the letter's recipient got an account just now
//	code_prompt    what to do with the code, which follows, large
//	or_link        the link offered beside a code, when there is one
//	link_prompt    the text part's line above the link
//	button         the HTML part's button to the link
//	button_fallback after the expiry in the HTML part: the link, written out
//	set_password   when a password is chosen next
//	expiry         how long the link or code works
//	requested      when, from where and with what a browser asked for it
//	ignore         what to do about a letter one did not ask for; a letter
//	               without it has no such footer, and so no "requested" line
var catalogues = map[string]map[string]string{
	"en-GB": {
		"hello":     "Hello,",
		"intro":     "Someone (hopefully you) asked to sign in to <strong>{{.SiteName}}</strong> with this email address.",
		"requested": "Asked for on {{.When}} from {{.RequestIP}}{{if .Agent}}, with {{.Agent}}{{end}}.",

		"login.subject":         "Your sign-in link for {{.SiteName}}",
		"login.title":           "Sign in to {{.SiteName}}",
		"login.app_intro":       "<strong>{{.App}}</strong> asked {{.SiteName}} to send you this sign-in link.",
		"login.new_account":     "An account was created for you at {{.SiteName}} with this email address.",
		"login.link_prompt":     "To sign in, open this link:",
		"login.button":          "Sign in to {{.SiteName}}",
		"login.set_password":    "After you confirm, you will choose a password for your account.",
		"login.expiry":          "The link works once and expires in {{.Minutes}} minutes.",
		"login.button_fallback": "If the button does not work, copy this address into your browser:",
		"login.ignore":          "If you did not ask for this, you can ignore this email: nobody can sign in without the link.",

		"code.subject":     "{{.Code}} is your sign-in code for {{.SiteName}}",
		"code.title":       "Your sign-in code for {{.SiteName}}",
		"code.app_intro":   "<strong>{{.App}}</strong> asked {{.SiteName}} to send you this sign-in code.",
		"code.code_prompt": "Type this code where you asked for it:",
		"code.or_link":     "Or confirm with this link, on any device:",
		"code.expiry":      "The code works once and expires in {{.Minutes}} minutes.",
		"code.ignore":      "If you did not ask for this, you can ignore this email: nobody can sign in without the code.",

		// The test letter is sent by `caddy mailgate test-mail`, for the
		// operator, in the default locale only.
		"test.subject": "Test mail from mailgate for {{.SiteName}}",
		"test.title":   "Test mail from mailgate",
		"test.intro":   "This is a test mail from mailgate, sent with the SMTP settings configured for <strong>{{.SiteName}}</strong>.",
		"test.body":    "It reached you, so sign-in mails will too.",
	},
	"nl-NL": {
		"hello":     "Hallo,",
		"intro":     "Iemand (hopelijk jij) wil met dit e-mailadres inloggen bij <strong>{{.SiteName}}</strong>.",
		"requested": "Aangevraagd op {{.When}} vanaf {{.RequestIP}}{{if .Agent}}, met {{.Agent}}{{end}}.",

		"login.subject":         "Je inloglink voor {{.SiteName}}",
		"login.title":           "Inloggen bij {{.SiteName}}",
		"login.app_intro":       "<strong>{{.App}}</strong> heeft {{.SiteName}} gevraagd je deze inloglink te sturen.",
		"login.new_account":     "Er is met dit e-mailadres een account voor je aangemaakt bij {{.SiteName}}.",
		"login.link_prompt":     "Open deze link om in te loggen:",
		"login.button":          "Inloggen bij {{.SiteName}}",
		"login.set_password":    "Nadat je bevestigt, kies je een wachtwoord voor je account.",
		"login.expiry":          "De link werkt één keer en verloopt over {{.Minutes}} minuten.",
		"login.button_fallback": "Werkt de knop niet? Kopieer dan dit adres naar je browser:",
		"login.ignore":          "Heb je hier niet om gevraagd? Dan kun je deze e-mail negeren: zonder de link kan niemand inloggen.",

		"code.subject":     "{{.Code}} is je inlogcode voor {{.SiteName}}",
		"code.title":       "Je inlogcode voor {{.SiteName}}",
		"code.app_intro":   "<strong>{{.App}}</strong> heeft {{.SiteName}} gevraagd je deze inlogcode te sturen.",
		"code.code_prompt": "Typ deze code waar je erom vroeg:",
		"code.or_link":     "Of bevestig met deze link, op elk apparaat:",
		"code.expiry":      "De code werkt één keer en verloopt over {{.Minutes}} minuten.",
		"code.ignore":      "Heb je hier niet om gevraagd? Dan kun je deze e-mail negeren: zonder de code kan niemand inloggen.",
	},
	"nl-BE": {
		"hello":     "Beste,",
		"intro":     "Iemand (hopelijk u) wil zich met dit e-mailadres aanmelden bij <strong>{{.SiteName}}</strong>.",
		"requested": "Aangevraagd op {{.When}} vanaf {{.RequestIP}}{{if .Agent}}, met {{.Agent}}{{end}}.",

		"login.subject":         "Uw aanmeldlink voor {{.SiteName}}",
		"login.title":           "Aanmelden bij {{.SiteName}}",
		"login.app_intro":       "<strong>{{.App}}</strong> heeft {{.SiteName}} gevraagd u deze aanmeldlink te sturen.",
		"login.new_account":     "Er werd met dit e-mailadres een account voor u aangemaakt bij {{.SiteName}}.",
		"login.link_prompt":     "Open deze link om u aan te melden:",
		"login.button":          "Aanmelden bij {{.SiteName}}",
		"login.set_password":    "Nadat u bevestigt, kiest u een wachtwoord voor uw account.",
		"login.expiry":          "De link werkt één keer en vervalt binnen {{.Minutes}} minuten.",
		"login.button_fallback": "Werkt de knop niet? Kopieer dan dit adres naar uw browser:",
		"login.ignore":          "Hebt u hier niet om gevraagd? Dan mag u deze e-mail negeren: zonder de link kan niemand zich aanmelden.",

		"code.subject":     "{{.Code}} is uw aanmeldcode voor {{.SiteName}}",
		"code.title":       "Uw aanmeldcode voor {{.SiteName}}",
		"code.app_intro":   "<strong>{{.App}}</strong> heeft {{.SiteName}} gevraagd u deze aanmeldcode te sturen.",
		"code.code_prompt": "Typ deze code in waar u erom vroeg:",
		"code.or_link":     "Of bevestig met deze link, op eender welk toestel:",
		"code.expiry":      "De code werkt één keer en vervalt binnen {{.Minutes}} minuten.",
		"code.ignore":      "Hebt u hier niet om gevraagd? Dan mag u deze e-mail negeren: zonder de code kan niemand zich aanmelden.",
	},
}
