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
//	revoke         the "this wasn't me" link that ends the letter's link,
//	               when the letter has one (invitation, reset)
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

		// Invitations and password resets (seed 001) are asked for by an
		// app (app_intro names it) or by the operator (intro). Their links
		// last days or hours ({{.Lasts}}), and they offer a link that ends
		// them instead of telling the reader to ignore them.
		"invitation.subject":         "You are invited to {{.SiteName}}",
		"invitation.title":           "Your invitation to {{.SiteName}}",
		"invitation.intro":           "You have been invited to <strong>{{.SiteName}}</strong> with this email address.",
		"invitation.app_intro":       "<strong>{{.App}}</strong> invited you to <strong>{{.SiteName}}</strong> with this email address.",
		"invitation.link_prompt":     "To accept the invitation, open this link:",
		"invitation.button":          "Accept the invitation",
		"invitation.expiry":          "The link works once and expires in {{.Lasts}}.",
		"invitation.button_fallback": "If the button does not work, copy this address into your browser:",
		"invitation.revoke":          "Not expecting this invitation? Cancel it here, so that nobody can use the link:",

		"reset.subject":         "Choose a new password for {{.SiteName}}",
		"reset.title":           "Choose a new password for {{.SiteName}}",
		"reset.intro":           "A new password was asked for the account with this email address at <strong>{{.SiteName}}</strong>.",
		"reset.app_intro":       "<strong>{{.App}}</strong> asked {{.SiteName}} to send you this link to choose a new password.",
		"reset.link_prompt":     "To choose a new password, open this link:",
		"reset.button":          "Choose a new password",
		"reset.expiry":          "The link works once and expires in {{.Lasts}}. A new password signs you out on every other device.",
		"reset.button_fallback": "If the button does not work, copy this address into your browser:",
		"reset.revoke":          "Did you not ask for this? Cancel the link here, so that nobody can use it; your password stays as it is:",

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

		"invitation.subject":         "Je bent uitgenodigd voor {{.SiteName}}",
		"invitation.title":           "Je uitnodiging voor {{.SiteName}}",
		"invitation.intro":           "Je bent met dit e-mailadres uitgenodigd voor <strong>{{.SiteName}}</strong>.",
		"invitation.app_intro":       "<strong>{{.App}}</strong> heeft je met dit e-mailadres uitgenodigd voor <strong>{{.SiteName}}</strong>.",
		"invitation.link_prompt":     "Open deze link om de uitnodiging aan te nemen:",
		"invitation.button":          "Uitnodiging aannemen",
		"invitation.expiry":          "De link werkt één keer en verloopt over {{.Lasts}}.",
		"invitation.button_fallback": "Werkt de knop niet? Kopieer dan dit adres naar je browser:",
		"invitation.revoke":          "Verwachtte je deze uitnodiging niet? Trek haar hier in, dan kan niemand de link gebruiken:",

		"reset.subject":         "Kies een nieuw wachtwoord voor {{.SiteName}}",
		"reset.title":           "Kies een nieuw wachtwoord voor {{.SiteName}}",
		"reset.intro":           "Er is een nieuw wachtwoord gevraagd voor het account met dit e-mailadres bij <strong>{{.SiteName}}</strong>.",
		"reset.app_intro":       "<strong>{{.App}}</strong> heeft {{.SiteName}} gevraagd je deze link te sturen om een nieuw wachtwoord te kiezen.",
		"reset.link_prompt":     "Open deze link om een nieuw wachtwoord te kiezen:",
		"reset.button":          "Nieuw wachtwoord kiezen",
		"reset.expiry":          "De link werkt één keer en verloopt over {{.Lasts}}. Met een nieuw wachtwoord log je uit op al je andere apparaten.",
		"reset.button_fallback": "Werkt de knop niet? Kopieer dan dit adres naar je browser:",
		"reset.revoke":          "Heb je hier niet om gevraagd? Trek de link hier in, dan kan niemand hem gebruiken; je wachtwoord blijft zoals het is:",
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

		"invitation.subject":         "U bent uitgenodigd voor {{.SiteName}}",
		"invitation.title":           "Uw uitnodiging voor {{.SiteName}}",
		"invitation.intro":           "U werd met dit e-mailadres uitgenodigd voor <strong>{{.SiteName}}</strong>.",
		"invitation.app_intro":       "<strong>{{.App}}</strong> heeft u met dit e-mailadres uitgenodigd voor <strong>{{.SiteName}}</strong>.",
		"invitation.link_prompt":     "Open deze link om de uitnodiging te aanvaarden:",
		"invitation.button":          "Uitnodiging aanvaarden",
		"invitation.expiry":          "De link werkt één keer en vervalt binnen {{.Lasts}}.",
		"invitation.button_fallback": "Werkt de knop niet? Kopieer dan dit adres naar uw browser:",
		"invitation.revoke":          "Verwachtte u deze uitnodiging niet? Trek ze hier in, dan kan niemand de link gebruiken:",

		"reset.subject":         "Kies een nieuw wachtwoord voor {{.SiteName}}",
		"reset.title":           "Kies een nieuw wachtwoord voor {{.SiteName}}",
		"reset.intro":           "Er werd een nieuw wachtwoord gevraagd voor de account met dit e-mailadres bij <strong>{{.SiteName}}</strong>.",
		"reset.app_intro":       "<strong>{{.App}}</strong> heeft {{.SiteName}} gevraagd u deze link te sturen om een nieuw wachtwoord te kiezen.",
		"reset.link_prompt":     "Open deze link om een nieuw wachtwoord te kiezen:",
		"reset.button":          "Nieuw wachtwoord kiezen",
		"reset.expiry":          "De link werkt één keer en vervalt binnen {{.Lasts}}. Met een nieuw wachtwoord wordt u op al uw andere toestellen afgemeld.",
		"reset.button_fallback": "Werkt de knop niet? Kopieer dan dit adres naar uw browser:",
		"reset.revoke":          "Hebt u hier niet om gevraagd? Trek de link hier in, dan kan niemand hem gebruiken; uw wachtwoord blijft zoals het is:",
	},
}
