package api

import (
	"net/url"
	"strings"

	"github.com/carebook/carebook/mail"
	"github.com/carebook/carebook/models"
)

// mailSignupAttempt is the kind of account mail sent to an address that
// someone tried to sign up with while it already has an account: it
// carries a password-reset link.
const mailSignupAttempt = "signup-attempt"

// accountMail is the message that carries a token: in English, then in
// Turkish, in one mail. Tenants have no language setting yet, and a
// patient who reads only one of the two finds theirs either way. The mail
// names the tenant and carries the link and nothing else: no name, no
// appointment, no health data.
//
// The secret rides in the link's fragment (after #), which browsers never
// send to a server: it stays out of web-server logs and Referer headers on
// its way to the app, which posts it to the API.
func accountMail(purpose, appURL, tenantName, to, secret string) mail.Message {
	base := strings.TrimRight(appURL, "/")
	var page, subject string
	var en, tr []string
	switch purpose {
	case mailSignupAttempt:
		page = "/reset-password"
		subject = "Your account / Hesabınız"
		en = []string{
			"Someone tried to create an account with " + tenantName + " on Carebook with this address, which already has one.",
			"If it was you, log in with your password instead. If you forgot it, choose a new one with this link within 30 minutes:",
		}
		tr = []string{
			"Birisi bu adresle Carebook'ta bir " + tenantName + " hesabı açmaya çalıştı; bu adresin zaten bir hesabı var.",
			"Bu siz idiyseniz şifrenizle giriş yapın. Şifrenizi unuttuysanız bu bağlantıyla 30 dakika içinde yeni bir şifre belirleyin:",
		}
	case models.PurposePasswordReset:
		page = "/reset-password"
		subject = "Reset your password / Şifrenizi sıfırlayın"
		en = []string{
			"Someone asked to reset the password of your " + tenantName + " account on Carebook.",
			"To choose a new password, open this link within 30 minutes:",
		}
		tr = []string{
			"Carebook'taki " + tenantName + " hesabınızın şifresini sıfırlamak için bir istek aldık.",
			"Yeni bir şifre belirlemek için bu bağlantıyı 30 dakika içinde açın:",
		}
	default:
		page = "/verify-email"
		subject = "Confirm your e-mail address / E-posta adresinizi doğrulayın"
		en = []string{
			"This address was used to create an account with " + tenantName + " on Carebook.",
			"To confirm that it is yours, open this link within 24 hours:",
		}
		tr = []string{
			"Bu adres, Carebook'ta bir " + tenantName + " hesabı açmak için kullanıldı.",
			"Adresin size ait olduğunu doğrulamak için bu bağlantıyı 24 saat içinde açın:",
		}
	}
	link := base + page + "#token=" + url.QueryEscape(secret)
	var b strings.Builder
	b.WriteString("Hello,\n\n")
	b.WriteString(strings.Join(en, "\n") + "\n\n" + link + "\n\n")
	b.WriteString("Or enter this code in the app: " + secret + "\n\n")
	b.WriteString("If you did not ask for this, ignore this mail: nothing changes without the link. Never share the link or the code.\n\n")
	b.WriteString("-- \n\nMerhaba,\n\n")
	b.WriteString(strings.Join(tr, "\n") + "\n\n" + link + "\n\n")
	b.WriteString("Ya da bu kodu uygulamaya girin: " + secret + "\n\n")
	b.WriteString("Bu isteği siz yapmadıysanız bu e-postayı dikkate almayın: bağlantı kullanılmadıkça hiçbir şey değişmez. Bağlantıyı ve kodu kimseyle paylaşmayın.\n")
	return mail.Message{To: to, Subject: subject, Text: b.String()}
}
