package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"regexp"
	"syscall"
)

// Redacted is what Redact puts in place of a credential.
const Redacted = "xxxxx"

var (
	// userinfoRE matches the user information of a URL: what lies between "://" and
	// an "@" before the host. It crosses spaces, which url.Parse refuses in a
	// password but then prints in its error.
	userinfoRE = regexp.MustCompile(`(://)[^/?#@"'\n]*@`)
	// secretParamRE matches a query parameter whose value is a credential: Azure's
	// SAS signature and subscription key, api-key as Azure OpenAI takes it, and the
	// common names of keys and tokens.
	secretParamRE = regexp.MustCompile(`(?i)([?&;](?:sig|signature|api-key|api_key|apikey|key|code|token|access_token|` +
		`refresh_token|password|secret|client_secret|subscription-key|ocp-apim-subscription-key|x-api-key)=)[^&#\s"']*`)
)

// Redact returns s, a URL or any text holding URLs (an error message, say), with the
// credentials a URL may carry replaced by Redacted: the user information
// (user:password@) and the values of query parameters that hold keys, tokens or
// signatures (sig, api-key, key, token, ...). Everything that prints a URL a user
// configured (banners, config errors, logs of upstream errors) prints it through
// Redact.
func Redact(s string) string {
	s = userinfoRE.ReplaceAllString(s, "${1}"+Redacted+"@")
	return secretParamRE.ReplaceAllString(s, "${1}"+Redacted)
}

// redactedError is an error whose text is Redact of its cause's; errors.Is and As
// still see the cause.
type redactedError struct{ err error }

func (e *redactedError) Error() string { return Redact(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// ErrResponseTooLarge is wrapped by the error of an answer over MaxResponseBytes.
var ErrResponseTooLarge = errors.New("the answer is over the size limit")

// ErrorText says in a few words, for a user, why no answer came: "it timed out",
// "the connection was refused", and so on. Unlike the error, it names no address,
// host or URL of the upstream: error files show it to the batch's owner, while the
// error itself goes to the operator's log.
func ErrorText(err error) string {
	var (
		dns *net.DNSError
		rhe tls.RecordHeaderError
		cve *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, ErrResponseTooLarge):
		return "its answer was over the size limit"
	case errors.As(err, &dns):
		return "its host name could not be resolved"
	case errors.As(err, &cve), errors.As(err, &rhe):
		return "the TLS handshake failed"
	}
	switch ErrorCode(err) {
	case "timeout":
		if errors.Is(err, context.DeadlineExceeded) {
			return "it timed out"
		}
		return "the connection timed out"
	case "connection_reset":
		return "the connection was reset"
	case "connection_refused":
		return "the connection was refused"
	}
	if errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return "its host could not be reached"
	}
	return "the connection failed"
}
