package azure

import (
	"errors"
	"net"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Fault is the sluice.FaultFunc of Blob Storage's errors: a service that does not
// answer, answers 5xx (it is busy or failing) or refuses the connection. Refusals of
// the request itself (403, 404, 409) are not faults: retrying changes nothing.
func Fault(err error) (string, bool) {
	var (
		re     *azcore.ResponseError
		netErr net.Error
	)
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &re):
		if re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests {
			return "blob storage is not answering", true
		}
		return "", false
	case errors.As(err, &netErr):
		return "blob storage is not answering", true
	}
	return "", false
}
