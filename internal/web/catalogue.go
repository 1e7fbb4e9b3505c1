package web

// catalogues hold the text of the pages, per locale. Keys are used by the
// templates as {{.T.key}}; a value with a verb is used with printf.
var catalogues = map[string]map[string]string{
	"en-GB": {
		"lang":              "en-GB",
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
}

// DefaultLocale is the locale used when none, or an unknown one, is asked.
const DefaultLocale = "en-GB"

func catalogue(locale string) map[string]string {
	if c, ok := catalogues[locale]; ok {
		return c
	}
	return catalogues[DefaultLocale]
}
